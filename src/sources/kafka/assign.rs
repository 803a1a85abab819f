//! Which worker of the cluster reads which (topic, partition): a pure function that every
//! worker of every process evaluates alike, so each partition has exactly one reader without
//! any group protocol (no rebalancing can move a partition under a running dataflow).
//!
//! - **Listed topics** (`topic`, `topics`): the partitions of the listed topics, in configured
//!   order and by partition number, are dealt round-robin over the workers: partition `p` of
//!   the topic that comes after `n` partitions of earlier topics goes to worker
//!   `(n + p) % peers`. That is exactly even (worker counts differ by at most one), and for
//!   a single topic it is `p % peers`.
//! - **A pattern** (`topic-pattern`): the set of topics is not known in advance and grows
//!   while running, and workers notice a new topic at different moments; so the rule may only
//!   depend on the topic's name: topic `t` starts at worker `hash(t) % peers` and its
//!   partitions follow round-robin from there (Flink's `KafkaSourceEnumerator` does the same
//!   with Java's `String.hashCode`). Within a topic the spread is exact; across topics it is
//!   as even as the hash makes it, so many single-partition topics on few workers may put two
//!   on one worker and none on another. List the topics in `topics` when an exact spread
//!   matters more than discovery.
//!
//! The checkpoint keeps each (topic, partition)'s position on its own, so a restore into
//! another shape (or another selection) re-assigns by these rules and resumes each partition
//! where it was, whoever reads it now.

use std::collections::BTreeMap;

use tickflow_operators::symbol::stable_hash;

/// The owner rule of a topic selection.
///
/// ```
/// use tickflow::sources::kafka::Assigner;
/// // Five single-partition topics (one per symbol) and one with 3 partitions, over 4 workers.
/// let topics = [("A", 1), ("B", 1), ("C", 1), ("D", 1), ("E", 1), ("F", 3)];
/// let a = Assigner::listed(topics.iter().map(|&(t, n)| (t, n)), 4);
/// let owners: Vec<usize> = ["A", "B", "C", "D", "E"].iter().map(|t| a.owner(t, 0).unwrap()).collect();
/// assert_eq!(owners, [0, 1, 2, 3, 0]);
/// assert_eq!([a.owner("F", 0), a.owner("F", 1), a.owner("F", 2)], [Some(1), Some(2), Some(3)]);
/// assert_eq!(a.owner("G", 0), None); // not listed
/// ```
#[derive(Clone, Debug)]
pub struct Assigner {
    peers: usize,
    /// Listed topics: topic → how many partitions of earlier topics come before it.
    /// `None`: the pattern rule.
    listed: Option<BTreeMap<String, usize>>,
}

impl Assigner {
    /// The rule for listed topics: `topics` as (name, partition count) in configured order.
    pub fn listed<'a>(topics: impl IntoIterator<Item = (&'a str, i32)>, peers: usize) -> Assigner {
        let mut before = 0usize;
        let mut map = BTreeMap::new();
        for (topic, partitions) in topics {
            map.entry(topic.to_owned()).or_insert_with(|| {
                let start = before;
                before += partitions.max(0) as usize;
                start
            });
        }
        Assigner { peers: peers.max(1), listed: Some(map) }
    }

    /// The rule for topics matched by a pattern: by topic name only.
    pub fn by_name(peers: usize) -> Assigner {
        Assigner { peers: peers.max(1), listed: None }
    }

    /// The worker that reads `partition` of `topic`; `None` for a topic a listed rule does
    /// not know.
    pub fn owner(&self, topic: &str, partition: i32) -> Option<usize> {
        let start = match &self.listed {
            Some(map) => *map.get(topic)? as u64,
            // Mixed low bits matter: plain FNV-1a would start `bars.0` and `bars.4` at the same
            // worker of four.
            None => stable_hash(topic.as_bytes()),
        };
        let peers = self.peers as u64;
        Some(((start % peers + partition.max(0) as u64 % peers) % peers) as usize)
    }

    /// The partitions among `topics` (name, partition count) that worker `index` reads, by
    /// topic and partition.
    pub fn owned<'a>(&self, topics: impl IntoIterator<Item = (&'a str, i32)>, index: usize) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        for (topic, partitions) in topics {
            for p in 0..partitions {
                if self.owner(topic, p) == Some(index) {
                    out.push((topic.to_owned(), p));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many partitions each worker reads, checking every partition has exactly one owner.
    fn loads(a: &Assigner, topics: &[(String, i32)], peers: usize) -> Vec<usize> {
        let mut owners: BTreeMap<(String, i32), usize> = BTreeMap::new();
        for w in 0..peers {
            for tp in a.owned(topics.iter().map(|(t, n)| (t.as_str(), *n)), w) {
                *owners.entry(tp).or_default() += 1;
            }
        }
        let all: usize = topics.iter().map(|(_, n)| *n as usize).sum();
        assert_eq!(owners.len(), all, "every (topic, partition) has an owner: {topics:?} on {peers}");
        assert!(owners.values().all(|&n| n == 1), "exactly one owner each: {owners:?}");
        let mut load = vec![0; peers];
        for (t, n) in topics {
            for p in 0..*n {
                load[a.owner(t, p).unwrap()] += 1;
            }
        }
        load
    }

    fn shapes() -> Vec<Vec<(String, i32)>> {
        let mut out = vec![Vec::new()];
        for counts in [vec![1], vec![4], vec![1, 1, 1, 1, 1], vec![3, 1, 4, 1, 5], vec![8, 8], vec![2; 7], vec![0, 3]] {
            out.push(counts.iter().enumerate().map(|(i, &n)| (format!("bars.{i}"), n)).collect());
        }
        out
    }

    #[test]
    fn listed_topics_every_partition_exactly_once_and_exactly_even() {
        for topics in shapes() {
            for peers in 1..=7 {
                let a = Assigner::listed(topics.iter().map(|(t, n)| (t.as_str(), *n)), peers);
                let load = loads(&a, &topics, peers);
                let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
                assert!(max - min <= 1, "{topics:?} on {peers} workers: {load:?}");
            }
        }
    }

    #[test]
    fn a_single_listed_topic_is_partition_modulo_workers() {
        let a = Assigner::listed([("bars", 6)], 4);
        let owners: Vec<usize> = (0..6).map(|p| a.owner("bars", p).unwrap()).collect();
        assert_eq!(owners, [0, 1, 2, 3, 0, 1]);
    }

    /// Where `bars.0`..`bars.7` start among 4 workers.
    const PINNED_STARTS: [usize; 8] = [0, 1, 1, 0, 2, 1, 2, 1];

    #[test]
    fn by_name_every_partition_exactly_once_even_within_a_topic_and_stable() {
        for topics in shapes() {
            for peers in 1..=7 {
                let a = Assigner::by_name(peers);
                loads(&a, &topics, peers);
                for (t, n) in &topics {
                    let mut load = vec![0; peers];
                    for p in 0..*n {
                        load[a.owner(t, p).unwrap()] += 1;
                    }
                    let (min, max) = (load.iter().min().unwrap(), load.iter().max().unwrap());
                    assert!(max - min <= 1, "{t} ({n} partitions) on {peers} workers: {load:?}");
                }
            }
        }
        // Pinned: the rule is part of the deployment (every process must agree, across releases).
        let starts: Vec<usize> = (0..8).map(|i| Assigner::by_name(4).owner(&format!("bars.{i}"), 0).unwrap()).collect();
        assert_eq!(starts, PINNED_STARTS);
        let a = Assigner::by_name(4);
        let start = (stable_hash(b"bars.crypto") % 4) as usize;
        assert_eq!(a.owner("bars.crypto", 0), Some(start));
        assert_eq!(a.owner("bars.crypto", 1), Some((start + 1) % 4));
        // A topic's owner does not depend on which other topics exist.
        let alone = a.owned([("bars.crypto", 2)], start);
        let with_more = a.owned([("bars.crypto", 2), ("bars.nasdaq", 2)], start);
        assert_eq!(alone, [("bars.crypto".to_owned(), 0)]);
        assert_eq!(with_more[0], alone[0], "{with_more:?}");
    }
}
