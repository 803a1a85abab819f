//! Buffers bars until the input frontier passes their event time, then releases them sorted
//! by event time (stable: bars with equal times keep their arrival order).

use timely::dataflow::channels::pact::ParallelizationContract;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::InputHandleCore;
use timely::progress::frontier::MutableAntichain;

use super::{EventTime, frontier_watermark};
use crate::bar::Bar;

/// The buffer and the one capability it holds (at the least time it may still emit at).
pub struct Reorder<T: EventTime> {
    /// Sorted by event time after [`Reorder::release`]; its first `released` bars are the ones
    /// released, handed out in place and dropped by [`Reorder::finish`] (no copy).
    pending: Vec<Bar>,
    released: usize,
    cap: Option<Capability<T>>,
}

impl<T: EventTime> Default for Reorder<T> {
    fn default() -> Self {
        Reorder { pending: Vec::new(), released: 0, cap: None }
    }
}

impl<T: EventTime> Reorder<T> {
    /// Moves everything available on `input` into the buffer, holding a capability for
    /// output port `port` at the least time seen.
    pub fn absorb<P>(&mut self, input: &mut InputHandleCore<T, Vec<Bar>, P::Puller>, port: usize)
    where
        P: ParallelizationContract<T, Vec<Bar>>,
    {
        input.for_each(|cap, data| {
            // Messages sent under no capability make no progress claim; they cannot occur
            // here (every tickflow source sends under a capability), and are still kept.
            if let Some(c) = cap.retain_least(port) {
                if self.cap.as_ref().is_none_or(|held| c.time() < held.time()) {
                    self.cap = Some(c);
                }
            }
            self.pending.append(data);
        });
    }

    /// Releases the bars with event time below the frontier's watermark (all of them once
    /// the frontier is empty), sorted by event time, with the capability to emit them at.
    /// Call [`Reorder::finish`] after emitting.
    pub fn release(&mut self, frontier: &MutableAntichain<T>) -> Option<(&Capability<T>, &[Bar])> {
        self.drop_released();
        let bound = frontier_watermark(frontier);
        if !self.pending.is_empty() {
            // Stable, and linear on the common case of bars already in event-time order.
            self.pending.sort_by_key(|b| b.ts);
            self.released = match bound {
                None => self.pending.len(),
                Some(f) => self.pending.partition_point(|b| b.ts < f),
            };
        }
        let cap = self.cap.as_ref()?;
        Some((cap, &self.pending[..self.released]))
    }

    fn drop_released(&mut self) {
        if self.released > 0 {
            self.pending.drain(..self.released);
            self.released = 0;
        }
    }

    /// After emitting: keeps the capability at the frontier while bars remain, else drops it.
    /// `keep_open` holds it even when empty (an operator with other pending state).
    pub fn finish(&mut self, frontier: &MutableAntichain<T>, keep_open: bool) {
        self.drop_released();
        match frontier.frontier().first() {
            Some(f) if !self.pending.is_empty() || keep_open => {
                if let Some(c) = self.cap.as_mut() {
                    if c.time() < f {
                        c.downgrade(f);
                    }
                }
            }
            _ => self.cap = None,
        }
    }

    /// The capability held, if any.
    pub fn capability(&self) -> Option<&Capability<T>> {
        self.cap.as_ref()
    }

    /// Takes a capability when none is held (an operator with its own pending state).
    pub fn hold(&mut self, cap: Capability<T>) {
        if self.cap.is_none() {
            self.cap = Some(cap);
        }
    }

    /// How many bars wait for the frontier.
    pub fn backlog(&self) -> usize {
        self.pending.len() - self.released
    }

    /// The bars waiting for the frontier (part of an operator's checkpointed state).
    pub fn pending(&self) -> &[Bar] {
        &self.pending[self.released..]
    }

    /// Puts restored bars back into the buffer; they need a capability ([`Reorder::hold`]).
    pub fn restore(&mut self, bars: impl IntoIterator<Item = Bar>) {
        self.drop_released();
        self.pending.extend(bars);
    }
}
