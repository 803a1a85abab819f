//! `cluster.toml` text: parse and validate never panic; a file that parses either builds or
//! lists its problems, each naming its key; errors are never empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickflow::config::Config;

fuzz_target!(|text: &str| {
    match Config::parse(text) {
        Ok(config) => {
            if let Err(errors) = config.build() {
                assert!(!errors.0.is_empty(), "build failed without an error");
                for e in &errors.0 {
                    assert!(!e.trim().is_empty(), "an empty build error");
                }
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "parse failed without an error");
            for e in &errors.0 {
                assert!(!e.trim().is_empty(), "an empty parse error");
            }
        }
    }
});
