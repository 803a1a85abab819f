//! `cluster.toml`: the one deployment file. Parse → validate (every error at once, each naming
//! the key, the bad value and a good example) → build, before any worker starts.
mod duration;
mod model;
mod validate;

pub use duration::HumanDuration;
pub use model::*;
pub use validate::{Built, CheckpointSpec, ConfigErrors, FileFormat, SourceSpec};
