//! Where bars come from.
pub mod generator;
