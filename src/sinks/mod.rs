//! Where results go.
pub mod questdb;
