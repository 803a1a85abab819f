//! Where bars come from: the [`driver`] operator around a reader of each kind.
pub mod driver;
pub mod file;
pub mod generator;
pub mod kafka;
pub mod local;
