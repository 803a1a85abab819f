//! The built-in synthetic market.
