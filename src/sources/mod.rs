//! Where bars come from.
pub mod file;
pub mod generator;
