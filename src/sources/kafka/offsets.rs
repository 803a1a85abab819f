//! Which Kafka offsets the dataflow has completed, and may therefore be committed.
//!
//! The source records, per partition, the next offset after each batch together with the
//! timely time (capability) the batch was emitted at. Once the output probe's frontier is past
//! that time, every record of the batch has passed the probe: the sinks, which write
//! synchronously inside the dataflow, have handled it. Only then is the offset committable.
//! Invalid records advance the offset too (they were handed to `on_invalid` synchronously).

use std::collections::{BTreeMap, VecDeque};

use tickflow_operators::dataflow::Time;

#[derive(Clone, Debug, Default)]
struct Pending {
    /// (emitted at time, next offset after the batch), times non-decreasing.
    batches: VecDeque<(Time, i64)>,
    /// Next offset after everything completed.
    completed: Option<i64>,
    /// Last offset handed out for committing.
    committed: Option<i64>,
}

/// Per-partition offsets of emitted batches (partitions keyed by `K`: a partition number, or
/// the source's index of a (topic, partition)), completed as the output frontier advances.
///
/// ```
/// use tickflow::sources::kafka::OffsetTracker;
/// let mut t = OffsetTracker::default();
/// t.emitted(0, (0, 100), 10); // offsets ..10 of partition 0 emitted at time (epoch 0, 100)
/// t.emitted(0, (0, 250), 25);
/// t.completed(&[(0, 100)]); // frontier at (0, 100): time (0, 100) not complete yet
/// assert_eq!(t.take_commits(), []);
/// t.completed(&[(0, 200)]);
/// assert_eq!(t.take_commits(), [(0, 10)]);
/// t.completed(&[]); // empty frontier: everything complete
/// assert_eq!(t.take_commits(), [(0, 25)]);
/// assert_eq!(t.take_commits(), []); // nothing new
/// ```
#[derive(Clone, Debug)]
pub struct OffsetTracker<K: Ord + Copy = i32> {
    parts: BTreeMap<K, Pending>,
}

impl<K: Ord + Copy> Default for OffsetTracker<K> {
    fn default() -> Self {
        OffsetTracker { parts: BTreeMap::new() }
    }
}

impl<K: Ord + Copy> OffsetTracker<K> {
    /// Records that offsets of `partition` below `next_offset` were emitted at `time`
    /// (consecutive batches at one time are merged).
    pub fn emitted(&mut self, partition: K, time: Time, next_offset: i64) {
        let p = self.parts.entry(partition).or_default();
        match p.batches.back_mut() {
            Some((t, off)) if *t == time => *off = (*off).max(next_offset),
            _ => p.batches.push_back((time, next_offset)),
        }
    }

    /// Marks complete every batch emitted at a time the `frontier` has passed (an empty
    /// frontier: all of them). Times are totally ordered, so the frontier has at most one
    /// element. Returns whether anything new completed.
    pub fn completed(&mut self, frontier: &[Time]) -> bool {
        let mut any = false;
        for p in self.parts.values_mut() {
            while let Some(&(t, off)) = p.batches.front() {
                let done = frontier.iter().all(|f| *f > t);
                if !done {
                    break;
                }
                p.batches.pop_front();
                p.completed = Some(p.completed.map_or(off, |c| c.max(off)));
                any = true;
            }
        }
        any
    }

    /// The completed offsets not handed out yet, as `(partition, next offset)`, by partition;
    /// they count as committed from now on (a failed commit is retried by the next commit of
    /// a later offset, which covers it).
    pub fn take_commits(&mut self) -> Vec<(K, i64)> {
        let mut out = Vec::new();
        for (&partition, p) in &mut self.parts {
            if let Some(c) = p.completed {
                if p.committed.is_none_or(|done| c > done) {
                    p.committed = Some(c);
                    out.push((partition, c));
                }
            }
        }
        out
    }

    /// The next offset after everything completed on `partition`, if anything did.
    pub fn completed_offset(&self, partition: K) -> Option<i64> {
        self.parts.get(&partition).and_then(|p| p.completed)
    }

    /// Batches emitted but not completed yet, over all partitions.
    pub fn pending_batches(&self) -> usize {
        self.parts.values().map(|p| p.batches.len()).sum()
    }

    /// Forgets what was handed out, so the next [`Self::take_commits`] returns every completed
    /// offset again (after a failed synchronous commit).
    pub fn reset_committed(&mut self) {
        for p in self.parts.values_mut() {
            p.committed = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_at_one_time_merge_and_complete_together() {
        let mut t = OffsetTracker::default();
        t.emitted(1, (0, 5), 3);
        t.emitted(1, (0, 5), 7);
        t.emitted(2, (0, 5), 4);
        assert_eq!(t.pending_batches(), 2);
        assert!(!t.completed(&[(0, 5)]));
        assert!(t.completed(&[(0, 6)]));
        assert_eq!(t.take_commits(), [(1, 7), (2, 4)]);
        assert_eq!(t.completed_offset(1), Some(7));
        assert_eq!(t.completed_offset(3), None);
    }

    #[test]
    fn completion_stops_at_the_first_incomplete_batch() {
        let mut t = OffsetTracker::default();
        t.emitted(0, (0, 10), 1);
        t.emitted(0, (0, 20), 2);
        t.emitted(0, (0, 30), 3);
        t.completed(&[(0, 25)]);
        assert_eq!(t.take_commits(), [(0, 2)]);
        assert_eq!(t.pending_batches(), 1);
    }

    #[test]
    fn reset_hands_out_completed_offsets_again() {
        let mut t = OffsetTracker::default();
        t.emitted(0, (0, 1), 9);
        t.completed(&[]);
        assert_eq!(t.take_commits(), [(0, 9)]);
        t.reset_committed();
        assert_eq!(t.take_commits(), [(0, 9)]);
    }
}
