//! The no-engine baseline of the W1 benchmark: one thread, one loop, the same decoding,
//! indicator arithmetic and output formatting as tickflow, and nothing else (no timely, no
//! exchange, no event-time ordering, no sinks). `scripts/bench.sh` reports tickflow's bars/s as
//! a ratio to this loop measured in the same run.
//!
//! Usage: `w1-baseline INPUT.ndjson OUTPUT.csv [CONFIG.toml]` (config: indicators and rules;
//! default bench/w1/w1.toml's set: SMA 20, EMA 20, RSI 14 and the RSI signal).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use tickflow::config::{Config, FileFormat};
use tickflow::decode::{NdjsonReader, TsUnit};
use tickflow::sinks::file::RowFormat;
use tickflow_operators::rows::BarOut;
use tickflow_operators::{IndicatorSet, Symbol, TimeBounds, Values};

const DEFAULT: &str = r#"
[indicators]
list = ["sma:20", "ema:20", "rsi:14"]
[signals]
rules = [{ kind = "rsi", period = 14, buy-below = 30.0, sell-above = 70.0 }]
"#;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        anyhow::bail!("usage: w1-baseline INPUT.ndjson OUTPUT.csv [CONFIG.toml]");
    }
    let text = match args.get(3) {
        Some(p) => std::fs::read_to_string(p)?,
        None => DEFAULT.to_string(),
    };
    let set: IndicatorSet = Config::parse(&text)?.build()?.set;
    let started = Instant::now();
    let reader = NdjsonReader::new(BufReader::with_capacity(1 << 20, File::open(&args[1])?), TimeBounds::default());
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&args[2])?);
    let mut fmt = RowFormat::new(FileFormat::Csv, &set, TsUnit::Seconds);
    if let Some(h) = fmt.bars_header() {
        out.write_all(h.as_bytes())?;
    }
    let mut states: HashMap<Symbol, tickflow_operators::SymbolState> = HashMap::new();
    let mut row = Values::default();
    let mut n = 0u64;
    for bar in reader {
        let bar = bar?;
        let state = states.entry(bar.symbol).or_insert_with(|| set.new_state());
        let decision = set.update(state, &bar, &mut row);
        let changed_from = state.change.observe(decision.action);
        out.write_all(fmt.bar(&BarOut { bar, values: row, decision, changed_from }))?;
        n += 1;
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("baseline: {n} bars in {secs:.3} s, {:.0} bars/s", n as f64 / secs);
    Ok(())
}
