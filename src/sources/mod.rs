//! Where bars come from.
pub mod file;
pub mod generator;
pub mod kafka;
