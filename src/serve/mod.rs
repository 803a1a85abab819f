//! The query API and the built-in dashboard, served on every process's status port from the
//! cluster's live state (no database).
//!
//! Each worker publishes its per-symbol results (enriched bars, candles, signal changes) into
//! its process's [`LiveStore`] once per batch ([`publish`]); a question about a symbol is
//! answered by the process whose worker owns it, and any other process forwards it there
//! once ([`peers`]). Questions about every symbol fan out to all processes.
//!
//! - [`config`]: `[serve]`: retention, caps, peers.
//! - [`store`]: the bounded per-symbol rings.
//! - [`publish`]: the dataflow hook (sink operators on the `Enrich` and `Candles` outputs).
//! - [`query`]: summaries, aggregates, JSON rows (pure).
//! - [`peers`]: symbol → owning process, forwarding.
//! - [`api`]: the `/api/v1` answers; [`stream`]: the live SSE stream; [`routes`]: the filter.
pub mod api;
pub mod config;
pub mod peers;
pub mod publish;
pub mod query;
pub mod routes;
pub mod store;
pub mod stream;

pub use config::{ServeConfig, ServeSpec};
pub use store::LiveStore;
