//! Bar payloads to validated bars.
