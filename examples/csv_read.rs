//! Reads a CSV bar file to the end, one of two ways, for `scripts/bench.sh csv`: tickflow's
//! `CsvReader` (`reader`), or the csv crate's `ByteRecord` reader doing the splitting with
//! tickflow's own field parsers, symbol rule and validation (`crate`). Both read every bar of
//! the file and print how many and the sum of the closes (which must agree).
//!
//! `cargo run --release --example csv_read -- FILE reader|crate`

use std::fs::File;
use std::io::BufReader;

use tickflow::decode::CsvReader;
use tickflow::decode::json::{parse_f64, parse_ts};
use tickflow_operators::{Bar, Symbol, TimeBounds};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, mode] = args.as_slice() else { anyhow::bail!("usage: csv_read FILE reader|crate") };
    let bounds = TimeBounds::default();
    let input = BufReader::with_capacity(1 << 20, File::open(file)?);
    let (mut n, mut sum) = (0u64, 0.0f64);
    match mode.as_str() {
        "reader" => {
            for bar in CsvReader::new(input, None, bounds)? {
                let bar = bar?;
                n += 1;
                sum += bar.close;
            }
        }
        "crate" => {
            let mut r = csv::ReaderBuilder::new().from_reader(input);
            let head = r.byte_headers()?.clone();
            let col = |name: &str| {
                head.iter()
                    .position(|h| h.eq_ignore_ascii_case(name.as_bytes()))
                    .ok_or_else(|| anyhow::anyhow!("no {name} column"))
            };
            let [sy, ts, open, high, low, close, volume] =
                [col("symbol")?, col("ts")?, col("open")?, col("high")?, col("low")?, col("close")?, col("volume")?];
            let mut rec = csv::ByteRecord::new();
            while r.read_byte_record(&mut rec)? {
                let text = |i: usize| std::str::from_utf8(&rec[i]).map(str::trim);
                let num = |i: usize, name: &str| -> anyhow::Result<f64> { Ok(parse_f64(name, text(i)?, true)?) };
                let (t, _) = parse_ts("ts", text(ts)?, true)?;
                let bar = Bar::new(
                    Symbol::new(text(sy)?)?,
                    t,
                    num(open, "open")?,
                    num(high, "high")?,
                    num(low, "low")?,
                    num(close, "close")?,
                    num(volume, "volume")?,
                );
                bar.validate(&bounds)?;
                n += 1;
                sum += bar.close;
            }
        }
        _ => anyhow::bail!("mode: reader or crate"),
    }
    println!("{n} bars, sum of closes {sum}");
    Ok(())
}
