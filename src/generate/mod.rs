//! `tickflow generate`: the synthetic market for demos and load tests.
