//! The durable sink operator: every output leaves the dataflow through it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tickflow_operators::dataflow::Time;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::{Capability, Operator};

use crate::recovery::RunControl;
use crate::sinks::worker::{OutputError, WorkerOutputs};

/// Writes every record through `write` into the worker's outputs and holds the capability of
/// its time until the outputs made it durable (files flushed, QuestDB acknowledged). The
/// returned stream carries no data: a probe on it is the *durable* frontier, which gates the
/// sources, decides Kafka commits and completes checkpoints. A write failure stops the run
/// (`control`) with a message naming it; nothing after it becomes durable.
pub fn durable_sink<'s, D: 'static>(
    stream: StreamVec<'s, Time, D>,
    name: &str,
    outputs: Rc<RefCell<WorkerOutputs>>,
    control: Arc<RunControl>,
    mut write: impl FnMut(&mut WorkerOutputs, &D) -> Result<(), OutputError> + 'static,
) -> StreamVec<'s, Time, ()> {
    let scope = stream.scope();
    let name = name.to_string();
    stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(Pipeline, &name.clone(), move |_cap, info| {
        let activator = scope.activator_for(info.address);
        // (capability, the output batch its records went into)
        let mut held: Vec<(Capability<Time>, u64)> = Vec::new();
        move |(input, _frontier), output| {
            if control.failed() {
                input.for_each(|_, data| data.clear());
                return; // keep every capability: nothing more becomes durable
            }
            let mut out = outputs.borrow_mut();
            let mut any = false;
            let mut failed: Option<OutputError> = None;
            input.for_each(|cap, data| {
                any = true;
                let batch = out.batch_no();
                if let Some(c) = cap.retain_least(output.output_index()) {
                    if !held.last().is_some_and(|(h, b)| *b == batch && h.time() <= c.time()) {
                        held.push((c, batch));
                    }
                }
                // By reference: a record (a `BarOut` is 360 bytes) is not copied out of the batch.
                if failed.is_none() {
                    if let Err(e) = data.iter().try_for_each(|r| write(&mut out, r)) {
                        failed = Some(e);
                    }
                }
                data.clear();
            });
            if any && failed.is_none() {
                if let Err(e) = out.end_batch() {
                    failed = Some(e);
                }
            }
            held.retain(|(_, b)| match out.durable(*b) {
                Ok(done) => !done,
                Err(e) => {
                    failed.get_or_insert(e);
                    true
                }
            });
            if let Some(e) = failed {
                control.fail(format!("{name}: {e}"));
                return;
            }
            if !held.is_empty() {
                activator.activate_after(Duration::from_millis(2));
            }
        }
    })
}
