//! The exchange connectors against a scripted local exchange replaying recorded bodies:
//! exact bars (symbol, UTC ms, OHLCV), pagination and back-fill, de-duplication across
//! polls, the forming-bar rule, dead letters, and the schedule after rate limits, errors
//! and rejections. The poller is stepped with explicit times: nothing sleeps.

use std::time::Duration;

use crate::support::connectors::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use tickflow::connectors::{
    BarSink, ConnectorConfig, ConnectorError, DeadRow, Exchange, Outcome, Poll, Poller, UreqFetch, run_until,
};
use tickflow::kafka::ProduceError;
use tickflow_operators::time::Millis;
use tickflow_operators::{Bar, Symbol};

/// 2024-01-01T00:00:00Z.
const T: i64 = 1_704_067_200_000;
const S: i64 = 1000;

fn bar(symbol: &str, ts: i64, o: f64, h: f64, l: f64, c: f64, v: f64) -> Bar {
    Bar::new(Symbol::new(symbol).unwrap(), ts, o, h, l, c, v)
}

fn poller(cfg: ConnectorConfig) -> Poller<UreqFetch> {
    Poller::new(cfg.build().unwrap(), UreqFetch::new(Duration::from_secs(5)), 42)
}

fn rows(received: usize, duplicates: usize, forming: usize) -> Outcome {
    Outcome::Rows { received, duplicates, forming }
}

fn delay_of(p: &Poll) -> Duration {
    match &p.outcome {
        Outcome::RateLimited { delay, .. } | Outcome::Transient { delay, .. } => *delay,
        other => panic!("expected a backoff, got {other:?}"),
    }
}

fn history(from_s: i64, to_s: i64) -> String {
    format!("/market/udf/history?symbol=BTCIRT&resolution=1&from={from_s}&to={to_s}")
}

fn page1_bars(symbol: &str) -> Vec<Bar> {
    vec![
        bar(symbol, T, 21800000000.0, 21810000000.0, 21795000000.0, 21805000000.0, 0.412),
        bar(symbol, T + 60 * S, 21805000000.0, 21815000000.0, 21800000000.0, 21810000000.0, 0.0873),
        bar(symbol, T + 120 * S, 21810000000.0, 21812000000.0, 21796000000.0, 21798000000.0, 1.25),
        bar(symbol, T + 180 * S, 21798000000.0, 21800000000.0, 21785000000.0, 21790000000.0, 0.3),
        bar(symbol, T + 240 * S, 21790000000.0, 21795000000.0, 21780000000.0, 21792000000.0, 0.0561),
    ]
}

#[test]
fn nobitex_backfills_in_pages_then_emits_each_closed_bar_once() {
    let fake = FakeExchange::start(vec![
        Step::fixture("nobitex/btcirt_1m_page1.json"),
        Step::fixture("nobitex/btcirt_1m_page2_bad_row.json"),
        Step::fixture("nobitex/btcirt_1m_overlap_forming.json"),
        Step::fixture("nobitex/btcirt_1m_revised.json"),
        Step::fixture("nobitex/no_data.json"),
    ]);
    let mut p = poller(nobitex_config(&fake.base_url(), &["BTCIRT"]));
    let t0 = T + 630 * S; // 00:10:30; back-fill 10 minutes → from 00:00:00.

    // Page 1: [00:00, 00:05) lies wholly in the closed past: the next page follows after
    // the request spacing only.
    let p1 = p.poll_once(t0);
    assert_eq!(p1.outcome, rows(5, 0, 0));
    assert_eq!(p1.bars, page1_bars("BTCIRT"));
    assert_eq!(p1.next_poll_at, t0 + S);
    let idle = p.poll_once(t0 + 500);
    assert_eq!((idle.outcome, idle.next_poll_at), (Outcome::Idle, t0 + S));

    // Page 2 reaches the present; one row breaks high >= max(open, close).
    let p2 = p.poll_once(t0 + S);
    assert_eq!(p2.outcome, rows(5, 0, 0));
    assert_eq!(
        p2.bars,
        [
            bar("BTCIRT", T + 300 * S, 21792000000.0, 21798000000.0, 21788000000.0, 21795000000.0, 0.5),
            bar("BTCIRT", T + 360 * S, 21795000000.0, 21802000000.0, 21794000000.0, 21801000000.0, 0.212),
            bar("BTCIRT", T + 480 * S, 21803000000.0, 21806000000.0, 21798000000.0, 21799000000.0, 0.1),
            bar("BTCIRT", T + 540 * S, 21799000000.0, 21804000000.0, 21797000000.0, 21802000000.0, 0.33),
        ]
    );
    assert_eq!(
        p2.dead_letters,
        [DeadRow {
            symbol: Symbol::new("BTCIRT").unwrap(),
            index: 2,
            field: Some("high".into()),
            reason: "high: 21700000000 is below max(open, close) = 21803000000 (rule: high >= max(open, close))".into(),
            raw: r#"{"c":21803000000,"h":21700000000,"l":21799000000,"o":21801000000,"t":1704067620,"v":0.75}"#.into(),
        }]
    );
    // Caught up: the next poll is a poll interval away.
    assert_eq!(p2.next_poll_at, t0 + S + 60 * S);

    // 00:11:31: the answer repeats 00:09 (already sent), has 00:10 (closed at 00:11:00)
    // and 00:11 (forming: skipped).
    let p3 = p.poll_once(T + 691 * S);
    assert_eq!(p3.outcome, rows(3, 1, 1));
    assert_eq!(p3.bars, [bar("BTCIRT", T + 600 * S, 21802000000.0, 21809000000.0, 21800000000.0, 21806000000.0, 0.41)]);
    assert!(p3.dead_letters.is_empty());

    // 00:12:31: 00:11 is closed now, with its final values (not those seen while forming).
    let p4 = p.poll_once(T + 751 * S);
    assert_eq!(p4.outcome, rows(2, 0, 1));
    assert_eq!(p4.bars, [bar("BTCIRT", T + 660 * S, 21806000000.0, 21812000000.0, 21801000000.0, 21811000000.0, 0.27)]);

    // no_data: nothing, the cursor stays.
    let p5 = p.poll_once(T + 811 * S);
    assert_eq!((p5.outcome, p5.bars.len()), (rows(0, 0, 0), 0));

    let t = T / S;
    assert_eq!(
        fake.requests(),
        [
            history(t, t + 299),
            history(t + 300, t + 599),
            history(t + 600, t + 691),
            history(t + 660, t + 751),
            history(t + 720, t + 811),
        ]
    );
    let st = &p.symbols()[0];
    assert_eq!((st.last_ts, st.cursor), (Some(T + 660 * S), Some(T + 720 * S)));
    let m = p.metrics();
    assert_eq!((m.requests("ok"), m.bars(), m.dead_letters(), m.duplicates(), m.forming()), (5, 11, 1, 1, 2));
    let mut e = tickflow::prometheus::Exposition::new(tickflow::prometheus::NAMESPACE);
    m.render_into(&mut e, Exchange::Nobitex);
    let text = e.finish();
    assert!(text.contains("tickflow_connector_requests_total{exchange=\"nobitex\",outcome=\"ok\"} 5\n"), "{text}");
    assert!(text.contains("tickflow_connector_bars_total{exchange=\"nobitex\"} 11\n"), "{text}");
}

#[test]
fn a_rejected_symbol_is_parked_while_the_others_go_on() {
    let fake = FakeExchange::start(vec![
        Step::fixture("nobitex/btcirt_1m_page1.json"),
        Step::fixture("nobitex/error_symbol.json"),
        Step::fixture("nobitex/no_data.json"),
    ]);
    let mut cfg = nobitex_config(&fake.base_url(), &["BTCIRT", "XYZIRT"]);
    cfg.backfill = "3m".into();
    cfg.max_bars_per_request = 500;
    let mut p = poller(cfg);
    let t0 = T + 330 * S; // back-fill from 00:02:00

    let p1 = p.poll_once(t0);
    assert_eq!(p1.symbol.unwrap().as_str(), "BTCIRT");
    // 00:00 and 00:01 are before the back-fill window.
    assert_eq!((p1.outcome, p1.bars), (rows(5, 2, 0), page1_bars("BTCIRT")[2..].to_vec()));

    let p2 = p.poll_once(t0 + S);
    assert_eq!(p2.symbol.unwrap().as_str(), "XYZIRT");
    let message = "UDF body: error: \"Invalid symbol: XYZIRT\"".to_string();
    assert_eq!(p2.outcome, Outcome::Rejected { message, retry_at: t0 + S + 300 * S });
    // Next is BTCIRT's regular poll, not a retry of XYZIRT.
    assert_eq!(p2.next_poll_at, t0 + 60 * S);

    let p3 = p.poll_once(t0 + 60 * S);
    assert_eq!((p3.symbol.unwrap().as_str(), p3.outcome), ("BTCIRT", rows(0, 0, 0)));
    let t = T / S;
    assert_eq!(
        fake.requests(),
        [
            history(t + 120, t + 330),
            format!("/market/udf/history?symbol=XYZIRT&resolution=1&from={}&to={}", t + 120, t + 331),
            history(t + 300, t + 390),
        ]
    );
    assert_eq!((p.symbols()[1].rejections, p.metrics().requests("rejected")), (1, 1));
}

#[test]
fn rate_limits_and_server_errors_back_off_and_honour_retry_after() {
    let fake = FakeExchange::start(vec![
        Step::status_fixture(429, "nobitex/throttled_429.json").header("Retry-After", "30"),
        Step::status(503),
        Step::Close,
        Step::status(503).header("retry-after", "120"),
        Step::fixture("nobitex/btcirt_1m_page1.json"),
        Step::status(502),
    ]);
    let mut p = poller(nobitex_config(&fake.base_url(), &["BTCIRT"]));
    let t0 = T + 630 * S;

    let p1 = p.poll_once(t0);
    let Outcome::RateLimited { message, delay } = &p1.outcome else { panic!("{:?}", p1.outcome) };
    assert!(message.starts_with("HTTP 429: {\"detail\":\"Request was throttled."), "{message}");
    // Retry-After (30 s) is above the first backoff step (0.5-1 s): exactly 30 s.
    assert_eq!((*delay, p1.next_poll_at), (Duration::from_secs(30), t0 + 30 * S));
    // Nothing is requested before then.
    assert_eq!(p.poll_once(t0 + 30 * S - 1).outcome, Outcome::Idle);
    assert_eq!(fake.requests().len(), 1);

    // Second and third failures in a row: steps of 2 s and 4 s, jittered to [step/2, step].
    let now = t0 + 30 * S;
    let p2 = p.poll_once(now);
    let d2 = delay_of(&p2);
    assert!((Duration::from_secs(1)..=Duration::from_secs(2)).contains(&d2), "{d2:?}");
    assert_eq!(p2.next_poll_at, now + d2.as_millis() as i64);
    let now = p2.next_poll_at;
    let p3 = p.poll_once(now); // the connection is closed without an answer
    let Outcome::Transient { message, delay: d3 } = &p3.outcome else { panic!("{:?}", p3.outcome) };
    assert!(message.starts_with(&format!("GET {}/market/udf/history", fake.base_url())), "{message}");
    assert!((Duration::from_secs(2)..=Duration::from_secs(4)).contains(d3), "{d3:?}");
    // A 503 with Retry-After: 120 waits exactly 120 s (above the 4-8 s step).
    let now = p3.next_poll_at;
    let p4 = p.poll_once(now);
    assert_eq!((delay_of(&p4), p4.next_poll_at), (Duration::from_secs(120), now + 120 * S));

    // Success: the back-fill starts where it was, nothing was skipped.
    let now = p4.next_poll_at;
    let p5 = p.poll_once(now);
    assert_eq!(p5.bars, page1_bars("BTCIRT"));
    // The backoff starts over: the first step (0.5-1 s) is below the 1 s request spacing.
    let p6 = p.poll_once(p5.next_poll_at);
    assert_eq!(delay_of(&p6), Duration::from_secs(1));

    let requests = fake.requests();
    assert_eq!(requests[..5], vec![history(T / S, T / S + 299); 5][..]);
    assert_eq!(requests[5], history(T / S + 300, T / S + 599));
    let m = p.metrics();
    assert_eq!((m.requests("rate_limited"), m.requests("transient"), m.requests("ok")), (1, 4, 1));
}

#[test]
fn alphavantage_converts_us_eastern_across_the_march_dst_change_and_handles_limits() {
    let fake = FakeExchange::start(vec![
        Step::fixture("alphavantage/ibm_5min_dst_march.json"),
        Step::fixture("alphavantage/eth_usd_5min.json"),
        Step::fixture("alphavantage/note_rate_limit.json"),
        Step::fixture("alphavantage/information_limit.json"),
        Step::fixture("alphavantage/error_message.json"),
    ]);
    let mut p = poller(alphavantage_config(&fake.base_url(), &["IBM", "ETH/USD"]));
    let t0 = utc("2024-03-11T08:12:00Z");

    // Friday 19:50/19:55 EST (UTC-5) and Monday 04:00/04:05 EDT (UTC-4); 04:10 is forming.
    let p1 = p.poll_once(t0);
    assert_eq!(p1.outcome, rows(5, 0, 1));
    assert_eq!(
        p1.bars,
        [
            bar("IBM", utc("2024-03-09T00:50:00Z"), 195.85, 195.90, 195.82, 195.88, 75.0),
            bar("IBM", utc("2024-03-09T00:55:00Z"), 195.88, 195.95, 195.80, 195.90, 842.0),
            bar("IBM", utc("2024-03-11T08:00:00Z"), 195.00, 195.15, 194.90, 195.10, 1523.0),
            bar("IBM", utc("2024-03-11T08:05:00Z"), 195.10, 195.22, 195.05, 195.20, 310.0),
        ]
    );
    assert_eq!(p1.next_poll_at, t0 + 15 * S);

    // Digital currencies are stamped in UTC; produced as ETHUSD.
    let p2 = p.poll_once(t0 + 15 * S);
    assert_eq!(p2.outcome, rows(2, 0, 1));
    assert_eq!(p2.bars, [bar("ETHUSD", utc("2024-03-11T08:05:00Z"), 4045.12, 4051.0, 4040.03, 4049.87, 312.0)]);
    assert_eq!(p2.next_poll_at, t0 + 300 * S);

    // Note and Information are rate limits: every request waits (at least the 15 s spacing).
    let now = t0 + 300 * S;
    let p3 = p.poll_once(now);
    let Outcome::RateLimited { message, delay } = &p3.outcome else { panic!("{:?}", p3.outcome) };
    assert!(message.starts_with("Note: Thank you for using Alpha Vantage!"), "{message}");
    assert_eq!((*delay, p3.next_poll_at), (Duration::from_secs(15), now + 15 * S));
    let now = now + 15 * S;
    let p4 = p.poll_once(now);
    let Outcome::RateLimited { message, .. } = &p4.outcome else { panic!("{:?}", p4.outcome) };
    assert!(message.starts_with("Information: We have detected your API key as demo"), "{message}");
    // Error Message: IBM is parked for backoff-max (5 min), not retried in a loop.
    let now = now + 15 * S;
    let p5 = p.poll_once(now);
    let Outcome::Rejected { message, retry_at } = &p5.outcome else { panic!("{:?}", p5.outcome) };
    assert!(message.starts_with("Error Message: Invalid API call."), "{message}");
    assert_eq!(*retry_at, now + 300 * S);
    assert_eq!(p5.next_poll_at, now + 15 * S);

    let q = "/query?function=";
    assert_eq!(
        fake.requests(),
        [
            format!("{q}TIME_SERIES_INTRADAY&symbol=IBM&interval=5min&outputsize=full&apikey=demo"),
            format!("{q}CRYPTO_INTRADAY&symbol=ETH&market=USD&interval=5min&outputsize=full&apikey=demo"),
            format!("{q}TIME_SERIES_INTRADAY&symbol=IBM&interval=5min&outputsize=compact&apikey=demo"),
            format!("{q}TIME_SERIES_INTRADAY&symbol=IBM&interval=5min&outputsize=compact&apikey=demo"),
            format!("{q}TIME_SERIES_INTRADAY&symbol=IBM&interval=5min&outputsize=compact&apikey=demo"),
        ]
    );
}

#[test]
fn alphavantage_november_dst_change_dead_letters_once_and_repeats_are_duplicates() {
    let body = "alphavantage/ibm_5min_dst_november.json";
    let fake = FakeExchange::start(vec![Step::fixture(body), Step::fixture(body)]);
    let mut p = poller(alphavantage_config(&fake.base_url(), &["IBM"]));
    let t0 = utc("2024-11-04T09:12:00Z");

    // Friday 19:55 EDT (UTC-4), Monday 04:00/04:05 EST (UTC-5).
    let p1 = p.poll_once(t0);
    assert_eq!(p1.outcome, rows(4, 0, 0));
    assert_eq!(
        p1.bars,
        [
            bar("IBM", utc("2024-11-01T23:55:00Z"), 208.05, 208.30, 208.01, 208.25, 2651.0),
            bar("IBM", utc("2024-11-04T09:00:00Z"), 208.25, 208.30, 208.05, 208.10, 1204.0),
            bar("IBM", utc("2024-11-04T09:05:00Z"), 208.10, 208.25, 208.00, 208.20, 96.0),
        ]
    );
    assert_eq!(p1.dead_letters.len(), 1);
    let d = &p1.dead_letters[0];
    assert_eq!((d.field.as_deref(), d.reason.as_str()), (Some("volume"), "volume: -5 is negative (rule: volume >= 0)"));
    assert_eq!(
        d.raw,
        r#"{"2024-11-01 19:50:00":{"1. open":"208.0000","2. high":"208.1000","3. low":"207.9500","4. close":"208.0500","5. volume":"-5"}}"#
    );

    // The same answer again (Alpha Vantage repeats its last 100 bars): nothing new, and
    // the bad row is not dead-lettered a second time.
    let p2 = p.poll_once(p1.next_poll_at);
    assert_eq!((p2.outcome, p2.bars.len(), p2.dead_letters.len()), (rows(4, 4, 0), 0, 0));
}

/// Takes batches after failing the first `fail` sends; sets `stop` after the first success.
struct FlakySink<'a> {
    fail: usize,
    attempts: Vec<usize>,
    taken: Vec<Bar>,
    dead: usize,
    stop: &'a AtomicBool,
}

impl BarSink for FlakySink<'_> {
    fn send(&mut self, _: Exchange, bars: &[Bar], dead: &[DeadRow], _: Millis) -> Result<(), ConnectorError> {
        self.attempts.push(bars.len());
        if self.fail > 0 {
            self.fail -= 1;
            return Err(ProduceError::BrokerDown("broker paused".into()).into());
        }
        self.taken.extend_from_slice(bars);
        self.dead += dead.len();
        self.stop.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[test]
fn the_run_loop_retries_a_batch_the_sink_did_not_take_instead_of_dropping_it() {
    let fake = FakeExchange::start(vec![Step::fixture("nobitex/btcirt_1m_page1.json")]);
    let mut p = poller(nobitex_config(&fake.base_url(), &["BTCIRT"]));
    let stop = AtomicBool::new(false);
    let mut sink = FlakySink { fail: 2, attempts: Vec::new(), taken: Vec::new(), dead: 0, stop: &stop };
    // A clock that moves 10 s per reading: backoff waits pass without real sleeping.
    let t = Cell::new(T + 630 * S);
    let clock = || {
        let now = t.get();
        t.set(now + 10 * S);
        now
    };
    run_until(&mut p, &mut sink, &stop, clock).unwrap();
    assert_eq!(sink.attempts, [5, 5, 5]);
    assert_eq!((sink.taken, sink.dead), (page1_bars("BTCIRT"), 0));
    assert_eq!(fake.requests().len(), 1);
}
