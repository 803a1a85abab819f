//! The live state of one process: per symbol owned by its workers, the newest enriched bars,
//! candles per timeframe and signal changes, in bounded rings.
//!
//! Workers publish once per batch (one lock per batch, rows copied into preallocated-on-
//! first-use rings: no allocation per record once a symbol's rings are full); the HTTP thread
//! locks briefly to copy out what a request needs. A candle correction replaces the candle of
//! the same window in place.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tickflow_operators::dataflow::CandleOut;
use tickflow_operators::rows::{BarOut, Candle, SignalChange};
use tickflow_operators::time::Millis;
use tickflow_operators::{Bar, Symbol};

use super::config::ServeSpec;

/// A bounded ring of rows in event-time order.
#[derive(Clone, Debug)]
pub struct Ring<T> {
    rows: VecDeque<T>,
    cap: usize,
    /// Rows dropped from the front so far.
    pub evicted: u64,
    /// Event time of the newest dropped row.
    pub last_evicted: Option<Millis>,
}

impl<T> Ring<T> {
    fn new(cap: usize) -> Ring<T> {
        Ring { rows: VecDeque::new(), cap: cap.max(1), evicted: 0, last_evicted: None }
    }

    fn evict(&mut self, ts: impl Fn(&T) -> Millis) {
        while self.rows.len() >= self.cap {
            if let Some(old) = self.rows.pop_front() {
                self.evicted += 1;
                self.last_evicted = Some(ts(&old));
            }
        }
    }

    fn push(&mut self, row: T, ts: impl Fn(&T) -> Millis) {
        if self.rows.capacity() == 0 {
            // Once per series: the ring never grows past its retention.
            self.rows.reserve_exact(self.cap);
        }
        self.evict(ts);
        self.rows.push_back(row);
    }

    /// The retained rows, oldest first.
    pub fn rows(&self) -> &VecDeque<T> {
        &self.rows
    }

    /// How many rows this ring keeps at most.
    pub fn capacity(&self) -> usize {
        self.cap
    }
}

/// Everything retained for one symbol.
#[derive(Clone, Debug)]
pub struct SymbolHistory {
    /// Enriched bars.
    pub bars: Ring<BarOut>,
    /// Candles, one ring per configured timeframe.
    pub candles: Vec<Ring<Candle>>,
    /// Signal changes of bars and candles.
    pub changes: Ring<SignalChange>,
    /// The newest bar, kept even when `bars` is read concurrently (what `/symbols` lists).
    pub latest: Option<BarOut>,
    /// The bar before `latest` (for the change).
    pub previous_close: Option<f64>,
}

impl SymbolHistory {
    fn new(spec: &ServeSpec) -> SymbolHistory {
        SymbolHistory {
            bars: Ring::new(spec.bar_retention),
            candles: spec.candle_retention.iter().map(|&n| Ring::new(n)).collect(),
            changes: Ring::new(spec.signal_changes.max(1)),
            latest: None,
            previous_close: None,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    symbols: HashMap<Symbol, SymbolHistory, foldhash::fast::FixedState>,
}

/// The live state of the process's workers (see the module doc).
#[derive(Debug)]
pub struct LiveStore {
    spec: ServeSpec,
    inner: Mutex<Inner>,
    /// Rows not retained because `serve.max-symbols` symbols are already kept.
    refused: AtomicU64,
    /// Bumped at every publish: the live streams skip work when nothing changed.
    version: AtomicU64,
}

impl LiveStore {
    /// An empty store.
    pub fn new(spec: ServeSpec) -> LiveStore {
        LiveStore { spec, inner: Mutex::default(), refused: AtomicU64::new(0), version: AtomicU64::new(0) }
    }

    /// The settings it runs with.
    pub fn spec(&self) -> &ServeSpec {
        &self.spec
    }

    /// The index of timeframe `ms` among the configured ones.
    pub fn timeframe_index(&self, ms: Millis) -> Option<usize> {
        self.spec.timeframes.iter().position(|&t| t == ms)
    }

    /// Publish counter (changes whenever rows were added).
    pub fn version(&self) -> u64 {
        self.version.load(Relaxed)
    }

    /// Rows refused for lack of symbol slots.
    pub fn refused(&self) -> u64 {
        self.refused.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data (rings) in a usable state.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one batch of the `Enrich` operator's output (late bars are skipped).
    pub fn publish_bars(&self, rows: &[Result<BarOut, Bar>]) {
        let mut inner = self.lock();
        let mut refused = 0;
        for row in rows.iter().flatten() {
            let Some(h) = entry(&mut inner, &self.spec, row.bar.symbol) else {
                refused += 1;
                continue;
            };
            h.previous_close = h.latest.map(|l| l.bar.close);
            h.latest = Some(*row);
            h.bars.push(*row, |r| r.bar.ts);
            if let Some(change) = row.signal_change() {
                h.changes.push(change, |c| c.ts);
            }
        }
        drop(inner);
        self.refused.fetch_add(refused, Relaxed);
        self.version.fetch_add(1, Relaxed);
    }

    /// Adds one batch of the `Candles` operator's output: new windows are appended, a
    /// correction replaces its window (late bars are skipped).
    pub fn publish_candles(&self, rows: &[CandleOut]) {
        let mut inner = self.lock();
        let mut refused = 0;
        for c in rows.iter().flatten() {
            let Some(tf) = self.timeframe_index(c.timeframe) else { continue };
            let Some(h) = entry(&mut inner, &self.spec, c.symbol) else {
                refused += 1;
                continue;
            };
            upsert(&mut h.candles[tf], *c);
            if let Some(change) = c.signal_change() {
                h.changes.push(change, |c| c.ts);
            }
        }
        drop(inner);
        self.refused.fetch_add(refused, Relaxed);
        self.version.fetch_add(1, Relaxed);
    }

    /// Runs `f` on the history of `symbol` (under the lock: copy out, do not compute long).
    pub fn with_symbol<R>(&self, symbol: &Symbol, f: impl FnOnce(&SymbolHistory) -> R) -> Option<R> {
        self.lock().symbols.get(symbol).map(f)
    }

    /// The newest bar and previous close of every symbol, sorted by symbol.
    pub fn latest(&self) -> Vec<(BarOut, Option<f64>)> {
        let mut out: Vec<_> =
            self.lock().symbols.values().filter_map(|h| h.latest.map(|l| (l, h.previous_close))).collect();
        out.sort_by(|a, b| a.0.bar.symbol.as_str().cmp(b.0.bar.symbol.as_str()));
        out
    }

    /// How many symbols are kept.
    pub fn symbols(&self) -> usize {
        self.lock().symbols.len()
    }
}

fn entry<'a>(inner: &'a mut Inner, spec: &ServeSpec, symbol: Symbol) -> Option<&'a mut SymbolHistory> {
    if !inner.symbols.contains_key(&symbol) {
        if inner.symbols.len() >= spec.max_symbols {
            return None;
        }
        inner.symbols.insert(symbol, SymbolHistory::new(spec));
    }
    inner.symbols.get_mut(&symbol)
}

/// Appends `c`, or replaces the candle of the same window (a correction), keeping start order.
fn upsert(ring: &mut Ring<Candle>, c: Candle) {
    match ring.rows.iter().rposition(|r| r.start <= c.start) {
        Some(i) if ring.rows[i].start == c.start => ring.rows[i] = c,
        Some(i) if i + 1 < ring.rows.len() => {
            // A window between kept ones (only with allowed lateness).
            ring.rows.insert(i + 1, c);
            while ring.rows.len() > ring.cap {
                if let Some(old) = ring.rows.pop_front() {
                    ring.evicted += 1;
                    ring.last_evicted = Some(old.start);
                }
            }
        }
        Some(_) => ring.push(c, |r| r.start),
        None if ring.rows.is_empty() => ring.push(c, |r| r.start),
        // Older than everything kept: a correction of an evicted window is not retained;
        // an older first window is, while there is room.
        None if ring.evicted == 0 && ring.rows.len() < ring.cap => ring.rows.push_front(c),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tickflow_operators::set::Values;
    use tickflow_operators::signal::Decision;

    fn spec(bars: usize, candles: usize) -> ServeSpec {
        ServeSpec {
            bar_retention: bars,
            candle_retention: vec![candles],
            timeframes: vec![60_000],
            signal_changes: 4,
            max_symbols: 2,
            max_limit: 100,
            stream_clients: 1,
            push_interval: Duration::from_secs(1),
            peer_timeout: Duration::from_secs(1),
            peers: None,
            linger: Duration::ZERO,
        }
    }

    fn bar(s: &str, ts: i64, close: f64) -> Result<BarOut, Bar> {
        let bar = Bar::new(Symbol::new(s).unwrap(), ts, close, close, close, close, 1.0);
        Ok(BarOut { bar, values: Values::default(), decision: Decision::default(), changed_from: None })
    }

    /// The memory cost per retained row that the README and `cluster.toml` quote.
    #[test]
    fn row_sizes_are_the_documented_ones() {
        assert_eq!(
            (std::mem::size_of::<BarOut>(), std::mem::size_of::<Candle>(), std::mem::size_of::<SignalChange>()),
            (360, 416, 56)
        );
    }

    #[test]
    fn rings_keep_the_newest_rows_and_remember_what_they_dropped() {
        let store = LiveStore::new(spec(3, 2));
        store.publish_bars(&(0..5).map(|i| bar("A", i * 1000, i as f64)).collect::<Vec<_>>());
        let (ts, evicted, last) = store
            .with_symbol(&Symbol::new("A").unwrap(), |h| {
                (h.bars.rows().iter().map(|r| r.bar.ts).collect::<Vec<_>>(), h.bars.evicted, h.bars.last_evicted)
            })
            .unwrap();
        assert_eq!(ts, vec![2000, 3000, 4000]);
        assert_eq!((evicted, last), (2, Some(1000)));
        let latest = store.latest();
        assert_eq!(latest.len(), 1);
        assert_eq!((latest[0].0.bar.close, latest[0].1), (4.0, Some(3.0)));
    }

    #[test]
    fn symbols_beyond_the_cap_are_refused_and_counted() {
        let store = LiveStore::new(spec(3, 2));
        store.publish_bars(&[bar("A", 1, 1.0), bar("B", 1, 1.0), bar("C", 1, 1.0), bar("C", 2, 1.0)]);
        assert_eq!(store.symbols(), 2);
        assert_eq!(store.refused(), 2);
    }

    #[test]
    fn a_candle_correction_replaces_its_window() {
        let store = LiveStore::new(spec(3, 2));
        let s = Symbol::new("A").unwrap();
        let b = Bar::new(s, 0, 1.0, 1.0, 1.0, 1.0, 1.0);
        let mut c0 = Candle::from_bar(&b, 60_000, 0);
        let c1 = Candle { start: 60_000, ..c0 };
        let c2 = Candle { start: 120_000, ..c0 };
        store.publish_candles(&[Ok(c0), Ok(c1)]);
        c0.revision = 1;
        c0.close = 2.0;
        store.publish_candles(&[Ok(c0)]);
        let got = |st: &LiveStore| {
            st.with_symbol(&s, |h| h.candles[0].rows().iter().map(|c| (c.start, c.revision)).collect::<Vec<_>>())
                .unwrap()
        };
        assert_eq!(got(&store), vec![(0, 1), (60_000, 0)]);
        store.publish_candles(&[Ok(c2)]);
        assert_eq!(got(&store), vec![(60_000, 0), (120_000, 0)]);
        // A correction of the evicted window is not retained.
        store.publish_candles(&[Ok(c0)]);
        assert_eq!(got(&store), vec![(60_000, 0), (120_000, 0)]);
    }
}
