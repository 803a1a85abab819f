//! Where results go.
pub mod durable;
pub mod file;
pub mod float;
pub mod questdb;
pub mod sort;
pub mod worker;
