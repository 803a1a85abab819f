//! `tickflow generate` plans and the bars they must produce, for the generate tests.

use std::collections::BTreeMap;

use tickflow::generate::{GenerateArgs, ProgressMode};
use tickflow::sources::generator::{GeneratorConfig, MarketGenerator};
use tickflow_operators::Bar;

/// A plan writing `count` bars of `symbols` symbols to `to`, from a fixed start.
pub fn args(to: &str, symbols: usize, count: u64) -> GenerateArgs {
    // A fixed start: live targets would otherwise start at the wall clock.
    GenerateArgs {
        to: to.into(),
        symbols,
        count: Some(count),
        start_ms: Some(1_700_000_000_000),
        progress: ProgressMode::None,
        ..GenerateArgs::default()
    }
}

/// The bars such a plan generates.
pub fn expected(symbols: usize, count: u64) -> Vec<Bar> {
    MarketGenerator::new(GeneratorConfig { symbols, records: Some(count), ..GeneratorConfig::default() })
        .unwrap()
        .collect()
}

/// `bars` grouped by symbol, in their order.
pub fn by_symbol(bars: impl IntoIterator<Item = Bar>) -> BTreeMap<String, Vec<Bar>> {
    let mut m: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for b in bars {
        m.entry(b.symbol.as_str().to_string()).or_default().push(b);
    }
    m
}
