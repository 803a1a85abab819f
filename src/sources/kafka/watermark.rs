//! The event-time watermark of one worker's Kafka partitions, with the idleness rule.
//!
//! Per partition: the newest event time seen (`max_ts`), when data last arrived, and whether
//! the partition is caught up (librdkafka reported end-of-partition since the last message).
//! The partition's watermark is `max_ts - delay`. The worker's watermark is the minimum over
//! its partitions that are not idle; it is `None` (hold the capability where it is) while a
//! partition that is not idle has produced no data yet, because nothing is known about what it
//! will yield.
//!
//! **Idleness.** A partition is idle when it is caught up *and* got no message for
//! `idle-timeout`. Idle partitions are left out of the minimum, so an empty or quiet partition
//! does not stall every window in the cluster. When *all* of a worker's partitions are idle the
//! worker follows the wall clock (`now - delay`, or its newest partition watermark if that is
//! ahead): it cannot leave the global minimum otherwise, and a worker frozen at an old time
//! would pin the frontier of every worker. The trade-off: a message that arrives on an idle
//! partition with an event time behind the watermark is late (it is still emitted, at the
//! current time; downstream counts it as late). Event times far behind the wall clock (a
//! replay without `stop-at-end`) are therefore late on a partition that has gone idle.
//!
//! Time comes in as an argument (`now_ms`, ms since the epoch), so tests never sleep.

use tickflow_operators::time::Millis;

/// What the watermark needs to know about one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionClock {
    /// The partition number.
    pub partition: i32,
    /// Newest event time among the valid bars read so far.
    pub max_ts: Option<Millis>,
    /// Wall-clock time of the last message read (or of the assignment), ms since the epoch.
    pub last_data_ms: i64,
    /// Caught up: end-of-partition was reported and no message arrived since.
    pub at_end: bool,
}

/// The watermark of one worker's partitions.
///
/// ```
/// use tickflow::sources::kafka::Watermarks;
/// // Partitions 0 and 2, no delay, 5 s idle timeout, assigned at t = 0.
/// let mut w = Watermarks::new(&[0, 2], 0, 5_000, 0);
/// w.on_data(0, 1_000, 10);
/// assert_eq!(w.watermark(10), None); // partition 2 has no data yet: hold
/// w.on_end(1); // partition 2 is empty...
/// assert_eq!(w.watermark(4_000), None); // ...but not idle for 5 s yet
/// assert_eq!(w.watermark(5_000), Some(1_000)); // idle: only partition 0 counts
/// ```
#[derive(Clone, Debug)]
pub struct Watermarks {
    parts: Vec<PartitionClock>,
    delay_ms: i64,
    idle_ms: i64,
    /// When tracking began (idleness of a worker without partitions counts from there).
    since_ms: i64,
    /// Without partitions: follow the wall clock (see [`Watermarks::set_follow_clock_when_empty`]).
    follow_clock_when_empty: bool,
}

impl Watermarks {
    /// Tracks `partitions` (indexed by position from now on), with the watermark trailing the
    /// newest event time by `delay_ms`; a caught-up partition is idle after `idle_ms` without
    /// data. `now_ms` is the assignment time (idleness counts from there).
    pub fn new(partitions: &[i32], delay_ms: i64, idle_ms: i64, now_ms: i64) -> Watermarks {
        let parts = partitions
            .iter()
            .map(|&partition| PartitionClock { partition, max_ts: None, last_data_ms: now_ms, at_end: false })
            .collect();
        Watermarks {
            parts,
            delay_ms: delay_ms.max(0),
            idle_ms: idle_ms.max(0),
            since_ms: now_ms,
            follow_clock_when_empty: false,
        }
    }

    /// Tracks one more partition (assigned while running), from `now_ms`; returns its index.
    /// It has no data yet, so it holds the watermark where it is until its first bars arrive
    /// or it is idle: its bars may be behind the watermark already, and are then late.
    pub fn add(&mut self, partition: i32, now_ms: i64) -> usize {
        self.parts.push(PartitionClock { partition, max_ts: None, last_data_ms: now_ms, at_end: false });
        self.parts.len() - 1
    }

    /// With `true`, a worker without partitions follows the wall clock once the idle timeout
    /// passed since [`Watermarks::new`], as if it had only idle partitions (a worker that may
    /// get partitions later, from a topic pattern, must not hold the cluster back meanwhile).
    /// With `false` (the default) it holds: `None`.
    pub fn set_follow_clock_when_empty(&mut self, follow: bool) {
        self.follow_clock_when_empty = follow;
    }

    /// The partitions, in the order given to [`Watermarks::new`].
    pub fn partitions(&self) -> &[PartitionClock] {
        &self.parts
    }

    /// Messages arrived on partition `idx` at `now_ms`; `max_ts` is the newest event time among
    /// their valid bars (`None` when all were invalid).
    pub fn on_messages(&mut self, idx: usize, max_ts: Option<Millis>, now_ms: i64) {
        let p = &mut self.parts[idx];
        p.at_end = false;
        p.last_data_ms = now_ms;
        if let Some(ts) = max_ts {
            p.max_ts = Some(p.max_ts.map_or(ts, |m| m.max(ts)));
        }
    }

    /// Valid bars up to event time `max_ts` arrived on partition `idx` at `now_ms`.
    pub fn on_data(&mut self, idx: usize, max_ts: Millis, now_ms: i64) {
        self.on_messages(idx, Some(max_ts), now_ms);
    }

    /// Partition `idx` is caught up (librdkafka reported end-of-partition).
    pub fn on_end(&mut self, idx: usize) {
        self.parts[idx].at_end = true;
    }

    /// Whether partition `idx` is idle at `now_ms`: caught up and quiet for the idle timeout.
    pub fn is_idle(&self, idx: usize, now_ms: i64) -> bool {
        let p = &self.parts[idx];
        p.at_end && now_ms.saturating_sub(p.last_data_ms) >= self.idle_ms
    }

    /// The worker's watermark at `now_ms`; `None` means "no new information: hold".
    pub fn watermark(&self, now_ms: i64) -> Option<Millis> {
        let mut min: Option<Millis> = None;
        let mut any_active = false;
        for (i, p) in self.parts.iter().enumerate() {
            if self.is_idle(i, now_ms) {
                continue;
            }
            any_active = true;
            let wm = p.max_ts?.saturating_sub(self.delay_ms);
            min = Some(min.map_or(wm, |m| m.min(wm)));
        }
        if self.parts.is_empty() {
            let idle = now_ms.saturating_sub(self.since_ms) >= self.idle_ms;
            return (self.follow_clock_when_empty && idle).then(|| now_ms.saturating_sub(self.delay_ms));
        }
        if any_active {
            return min;
        }
        // Every partition is idle: follow the wall clock (see the module docs).
        let newest = self.parts.iter().filter_map(|p| p.max_ts).max().map(|t| t.saturating_sub(self.delay_ms));
        let clock = now_ms.saturating_sub(self.delay_ms);
        Some(newest.map_or(clock, |n| n.max(clock)))
    }

    /// How long until some caught-up partition becomes idle (to schedule a wake-up), if any
    /// partition is caught up and not idle yet.
    pub fn next_idle_in_ms(&self, now_ms: i64) -> Option<i64> {
        self.parts
            .iter()
            .filter(|p| p.at_end)
            .map(|p| p.last_data_ms.saturating_add(self.idle_ms).saturating_sub(now_ms))
            .filter(|&d| d > 0)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_while_an_active_partition_has_no_data() {
        let mut w = Watermarks::new(&[0, 1], 100, 1_000, 0);
        assert_eq!(w.watermark(0), None);
        w.on_data(0, 5_000, 1);
        assert_eq!(w.watermark(1), None, "partition 1 may still yield anything");
        w.on_data(1, 7_000, 2);
        assert_eq!(w.watermark(2), Some(4_900), "min over partitions, minus the delay");
    }

    #[test]
    fn is_the_min_of_max_ts_minus_delay_and_max_ts_never_goes_back() {
        let mut w = Watermarks::new(&[3, 5], 10, 1_000, 0);
        w.on_data(0, 2_000, 0);
        w.on_data(1, 1_500, 0);
        assert_eq!(w.watermark(0), Some(1_490));
        w.on_data(1, 1_200, 1); // out of order: max stays 1_500
        assert_eq!(w.watermark(1), Some(1_490));
        w.on_data(1, 3_000, 2);
        assert_eq!(w.watermark(2), Some(1_990));
        assert_eq!(w.partitions()[1].partition, 5);
    }

    #[test]
    fn invalid_only_batches_refresh_activity_without_moving_time() {
        let mut w = Watermarks::new(&[0], 0, 1_000, 0);
        w.on_messages(0, None, 50);
        assert_eq!(w.partitions()[0].max_ts, None);
        assert_eq!(w.partitions()[0].last_data_ms, 50);
        assert_eq!(w.watermark(60), None);
    }

    #[test]
    fn an_idle_partition_stops_holding_back_the_watermark() {
        let mut w = Watermarks::new(&[0, 1], 0, 1_000, 0);
        w.on_data(0, 9_000, 10);
        w.on_data(1, 2_000, 10);
        w.on_end(1);
        assert_eq!(w.watermark(500), Some(2_000), "caught up but not quiet long enough");
        assert_eq!(w.next_idle_in_ms(500), Some(510));
        assert!(w.is_idle(1, 1_010));
        assert_eq!(w.watermark(1_010), Some(9_000), "idle partition left out");
        // New data makes it active again: it counts again at once.
        w.on_data(1, 2_500, 1_100);
        assert!(!w.is_idle(1, 5_000));
        assert_eq!(w.watermark(5_000), Some(2_500));
    }

    #[test]
    fn a_partition_with_a_backlog_is_never_idle() {
        let mut w = Watermarks::new(&[0, 1], 0, 1_000, 0);
        w.on_data(0, 9_000, 0);
        w.on_data(1, 1_000, 0); // no end-of-partition: still reading (or gated)
        assert_eq!(w.watermark(1_000_000), Some(1_000));
        assert_eq!(w.next_idle_in_ms(1_000_000), None);
    }

    #[test]
    fn an_empty_partition_becomes_idle_after_the_timeout_from_assignment() {
        let mut w = Watermarks::new(&[0, 1], 0, 1_000, 100);
        w.on_data(0, 5_000, 100);
        w.on_end(1);
        assert_eq!(w.watermark(1_099), None);
        assert_eq!(w.watermark(1_100), Some(5_000));
    }

    #[test]
    fn a_partition_added_later_holds_until_its_first_data_or_idleness() {
        let mut w = Watermarks::new(&[0], 0, 1_000, 0);
        w.on_data(0, 5_000, 0);
        assert_eq!(w.watermark(10), Some(5_000));
        let i = w.add(7, 20);
        assert_eq!((i, w.partitions()[1].partition), (1, 7));
        assert_eq!(w.watermark(30), None, "the new partition may yield anything");
        w.on_data(i, 3_000, 40); // behind the watermark already: downstream counts these late
        assert_eq!(w.watermark(40), Some(3_000));
        let j = w.add(8, 50);
        w.on_end(j); // empty: it stops holding once idle
        assert_eq!(w.watermark(1_049), None);
        assert_eq!(w.watermark(1_050), Some(3_000));
    }

    #[test]
    fn without_partitions_it_holds_or_follows_the_clock_after_the_idle_timeout() {
        let mut w = Watermarks::new(&[], 100, 1_000, 0);
        assert_eq!(w.watermark(5_000), None);
        w.set_follow_clock_when_empty(true);
        assert_eq!(w.watermark(999), None);
        assert_eq!(w.watermark(1_000), Some(900));
    }

    #[test]
    fn all_idle_follows_the_wall_clock_or_the_newest_partition() {
        let mut w = Watermarks::new(&[0, 1], 100, 1_000, 0);
        w.on_end(0);
        w.on_end(1);
        assert_eq!(w.watermark(999), None);
        assert_eq!(w.watermark(1_000), Some(900), "empty partitions: wall clock minus delay");
        w.on_data(0, 50_000, 2_000);
        w.on_end(0);
        assert_eq!(w.watermark(3_000), Some(49_900), "newest partition ahead of the clock");
        assert_eq!(w.watermark(60_000), Some(59_900), "clock ahead of the data");
    }
}
