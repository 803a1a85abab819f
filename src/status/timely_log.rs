//! Wires timely's worker log (`"timely"`) into [`OperatorStats`](super::OperatorStats) and the
//! worker's busy time.
//!
//! Register before building dataflows, or their `Operates` events are missed and their
//! operators are not counted. The callback runs on the worker thread; it folds events into an
//! [`OperatorRecorder`](super::OperatorRecorder) and publishes once per log flush (timely
//! flushes once per `step()`), so the cost per step is a few relaxed atomic adds.

use std::sync::Arc;

use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

use super::error::StatusError;
use super::process::ProcessMetrics;

/// Registers a `"timely"` logger on `worker` that records operator busy time by name into
/// `metrics.operators()` and top-level dataflow time into the worker's `busy_ns`.
///
/// When this is registered, leave [`LocalCounters::busy_ns`](super::LocalCounters) at zero,
/// or busy time is counted twice. Replaces any `"timely"` logger already registered.
///
/// ```
/// use std::sync::Arc;
/// use timely::dataflow::operators::{Inspect, ToStream};
/// use tickflow::status::{ProcessMetrics, register_timely_logging};
///
/// let metrics = Arc::new(ProcessMetrics::with_system_clock(0, 0..1));
/// let m = Arc::clone(&metrics);
/// timely::execute_directly(move |worker| {
///     register_timely_logging(worker, &m).unwrap();
///     worker.dataflow::<u64, _, _>(|scope| {
///         (0..10u64).to_stream(scope).container::<Vec<_>>().inspect(|_| {});
///     });
/// });
/// assert!(metrics.operators().snapshot().iter().any(|o| o.name == "Inspect"));
/// ```
pub fn register_timely_logging(worker: &mut Worker, metrics: &Arc<ProcessMetrics>) -> Result<(), StatusError> {
    let index = worker.index();
    let mut recorder = metrics.operator_recorder(index)?;
    let mut registry = worker.log_register().ok_or(StatusError::NoLogRegistry { index })?;
    registry.insert::<TimelyEventBuilder, _>("timely", move |_time, data| match data {
        Some(events) => {
            for (at, event) in events.iter() {
                match event {
                    TimelyEvent::Operates(op) => recorder.operates(op.id, &op.addr, &op.name),
                    TimelyEvent::Schedule(s) => match s.start_stop {
                        StartStop::Start => recorder.schedule_start(s.id, *at),
                        StartStop::Stop => recorder.schedule_stop(s.id, *at),
                    },
                    _ => {}
                }
            }
        }
        // `None` marks the end of a flush: publish once per flush, not per event.
        None => recorder.publish(),
    });
    tracing::debug!(worker = index, "timely logging registered for operator busy time");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::dataflow::operators::vec::Map;
    use timely::dataflow::operators::{Inspect, ToStream};

    #[test]
    fn named_operators_and_worker_busy_time_are_recorded() {
        let metrics = Arc::new(ProcessMetrics::with_system_clock(0, 0..1));
        let m = Arc::clone(&metrics);
        let seen = timely::execute_directly(move |worker| {
            register_timely_logging(worker, &m).unwrap();
            worker.dataflow::<u64, _, _>(|scope| {
                (0..100u64).to_stream(scope).container::<Vec<_>>().map(|x| x + 1).inspect(|_| {});
            });
            // Run to completion, then report what the logger saw.
            while worker.step() {}
            m.operators().snapshot()
        });
        let names: Vec<&str> = seen.iter().map(|o| o.name.as_str()).collect();
        for expected in ["FlatMap", "Inspect", "ToStreamBuilder"] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
        assert!(seen.iter().all(|o| o.worker == 0 && o.schedules >= 1));
        // The top-level dataflow is not an operator row; its time is the worker's busy time.
        assert!(!names.contains(&"Dataflow"), "{names:?}");
        assert!(metrics.worker(0).unwrap().load().counters.busy_ns > 0);
    }

    #[test]
    fn unknown_worker_is_an_error() {
        let metrics = Arc::new(ProcessMetrics::with_system_clock(1, 4..8));
        let err =
            timely::execute_directly(move |worker| register_timely_logging(worker, &metrics).unwrap_err().to_string());
        assert_eq!(err, "worker 0 is not in this process's worker range 4..8");
    }
}
