//! A fixed-capacity ring of `f64`, allocated once: the window store of rolling indicators.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ring {
    buf: Vec<f64>,
    cap: usize,
    head: usize,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Ring {
        Ring { buf: Vec::with_capacity(cap), cap, head: 0 }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() == self.cap
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Appends `x`; returns the evicted oldest value when the ring was full.
    pub(crate) fn push(&mut self, x: f64) -> Option<f64> {
        if self.buf.len() < self.cap {
            self.buf.push(x);
            None
        } else {
            let old = std::mem::replace(&mut self.buf[self.head], x);
            self.head += 1;
            if self.head == self.cap {
                self.head = 0;
            }
            Some(old)
        }
    }

    /// Values from oldest to newest.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (a, b) = if self.is_full() { self.buf.split_at(self.head) } else { self.buf.split_at(0) };
        b.iter().chain(a.iter()).copied()
    }

    /// The sum from oldest to newest (the order TA-Lib adds in).
    pub(crate) fn sum(&self) -> f64 {
        self.iter().fold(0.0, |acc, x| acc + x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_and_iterates_in_order() {
        let mut r = Ring::new(3);
        assert_eq!(r.push(1.0), None);
        assert_eq!(r.push(2.0), None);
        assert_eq!(r.push(3.0), None);
        assert_eq!(r.push(4.0), Some(1.0));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![2.0, 3.0, 4.0]);
        assert_eq!(r.sum(), 9.0);
    }
}
