//! What every tickflow HTTP listener shares: bearer-token checks, limits on what one client
//! may hold, and the accept loop that enforces them. The gateway (`/ingest`) and the status
//! server (`/status`, `/metrics`, `/rules`) both serve through [`serve::serve()`].
//!
//! - [`auth`]: bearer tokens, constant-time, and the "no token off loopback" start-up rule.
//! - [`limits`]: `[*.limits]` config, request slots, the buffered-body budget, the bounded
//!   body reader.
//! - [`serve`](mod@serve): the accept loop: connection cap, timeouts, graceful stop.
//! - [`tls`]: optional TLS on a listener (rustls), `[*.tls]` config.
pub mod auth;
pub mod limits;
pub mod serve;
pub mod tls;

pub use auth::{AuthError, Tokens};
pub use limits::{BodyBudget, BodyRejection, BodyRequest, HttpLimits, Limits, RequestSlot, RequestSlots};
pub use serve::{ServeStats, serve};
pub use tls::{Tls, TlsFiles};
