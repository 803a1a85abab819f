//! `tickflow top`: a live terminal view of every process and worker of a cluster, like
//! `vector top`.
//!
//! Each refresh reads every process's `/status` (the same endpoints, addresses and read token
//! as `tickflow status`), and rates are the counter deltas between two reads divided by the
//! time between them on the *server's* clock, so a slow poll does not distort them. On a
//! terminal the view is redrawn every interval until `q`; otherwise (or with `--once`) one
//! plain snapshot is printed from two reads an interval apart.
//!
//! - [`args`]: the command line and where the endpoints come from.
//! - [`sample`]: the part of `/status` the view reads, and reading it from every process.
//! - [`view`]: pure: two samples → rows with rates → text lines.
//! - [`screen`]: the interactive loop (raw mode, alternate screen, keys).

pub mod args;
pub mod sample;
pub mod screen;
pub mod view;

pub use args::{TopArgs, TopError, run_top};
