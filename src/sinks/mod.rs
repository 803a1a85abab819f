//! Where results go.
pub mod file;
pub mod questdb;
pub mod worker;
