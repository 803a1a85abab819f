//! The plain loop of W1 (`bench/w1/README.md`), for `scripts/bench.sh w1`: a single-threaded
//! program written the obvious way, sharing no code with tickflow — serde_json
//! `#[derive(Deserialize)]` per line, a `HashMap` of per-symbol state, SMA(20), EMA(20) and
//! RSI(14) in TA-Lib's conventions plus the RSI signal, `ryu` for the floats, a `BufWriter`,
//! and the spec's columns `symbol,timestamp,close,sma20,ema20,rsi14,signal`.
//!
//! `w1-plain INPUT.ndjson OUTPUT.csv` prints `{"bars":N,"secs":S}` on stdout.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use serde::Deserialize;

#[derive(Deserialize)]
struct Record<'a> {
    stock_symbol: &'a str,
    timestamp: f64,
    close: f64,
}

const SMA_N: usize = 20;
const EMA_N: usize = 20;
const RSI_N: usize = 14;

/// One symbol's indicator state.
#[derive(Default)]
struct State {
    /// Closes seen so far.
    n: usize,
    /// The last `SMA_N` closes (a ring) and their running sum.
    ring: [f64; SMA_N],
    sum: f64,
    ema: f64,
    prev: f64,
    gain: f64,
    loss: f64,
}

impl State {
    /// Adds `c`; returns (sma, ema, rsi), `None` during warm-up.
    fn update(&mut self, c: f64) -> (Option<f64>, Option<f64>, Option<f64>) {
        let i = self.n;
        self.n += 1;
        let slot = i % SMA_N;
        self.sum += c - if i >= SMA_N { self.ring[slot] } else { 0.0 };
        self.ring[slot] = c;
        let sma = (i + 1 >= SMA_N).then(|| self.sum / SMA_N as f64);
        let ema = if i + 1 == EMA_N {
            self.ema = self.sum / EMA_N as f64;
            Some(self.ema)
        } else if i + 1 > EMA_N {
            self.ema += 2.0 / (EMA_N as f64 + 1.0) * (c - self.ema);
            Some(self.ema)
        } else {
            None
        };
        let rsi = if i == 0 {
            None
        } else {
            let d = c - self.prev;
            let (g, l) = (d.max(0.0), (-d).max(0.0));
            if i <= RSI_N {
                self.gain += g;
                self.loss += l;
                if i == RSI_N {
                    self.gain /= RSI_N as f64;
                    self.loss /= RSI_N as f64;
                }
            } else {
                let k = (RSI_N - 1) as f64;
                self.gain = (self.gain * k + g) / RSI_N as f64;
                self.loss = (self.loss * k + l) / RSI_N as f64;
            }
            (i >= RSI_N).then(|| {
                let den = self.gain + self.loss;
                if den != 0.0 { 100.0 * self.gain / den } else { 0.0 }
            })
        };
        self.prev = c;
        (sma, ema, rsi)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: w1-plain INPUT.ndjson OUTPUT.csv".into());
    };
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(input)?);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(output)?);
    out.write_all(b"symbol,timestamp,close,sma20,ema20,rsi14,signal\n")?;
    let mut states: HashMap<String, State> = HashMap::new();
    let mut line = String::new();
    let mut ryu = ryu::Buffer::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let r: Record<'_> = serde_json::from_str(&line)?;
        let state = match states.get_mut(r.stock_symbol) {
            Some(s) => s,
            None => states.entry(r.stock_symbol.to_string()).or_default(),
        };
        let (sma, ema, rsi) = state.update(r.close);
        let signal = match rsi {
            Some(v) if v < 30.0 => "BUY",
            Some(v) if v > 70.0 => "SELL",
            _ => "HOLD",
        };
        out.write_all(r.stock_symbol.as_bytes())?;
        for v in [Some(r.timestamp), Some(r.close), sma, ema, rsi] {
            out.write_all(b",")?;
            if let Some(v) = v {
                out.write_all(ryu.format(v).as_bytes())?;
            }
        }
        out.write_all(b",")?;
        out.write_all(signal.as_bytes())?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("w1-plain: {n} bars in {secs:.3} s, {:.0} bars/s", n as f64 / secs);
    println!("{{\"bars\":{n},\"secs\":{secs}}}");
    Ok(())
}
