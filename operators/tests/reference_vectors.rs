//! Every indicator column of the standard set against TA-Lib's values for the four reference
//! series (tests/data/indicators, copied from TA-Lib 0.8.2 runs), with the reference checker's
//! tolerance: a cell passes within max(1e-9·|expected|, 1e-9); warm-up cells must be empty.

use std::path::Path;

use tickflow_operators::{Bar, IndicatorSet, Symbol, Values};

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
    (header, rows)
}

fn check_series(name: &str) -> (usize, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/indicators");
    let (ih, input) = read_csv(&dir.join("input").join(format!("{name}.csv")));
    assert_eq!(ih, ["ts", "open", "high", "low", "close", "volume"]);
    let (eh, expected) = read_csv(&dir.join("expected").join(format!("{name}.csv")));
    assert_eq!(input.len(), expected.len());

    let set = IndicatorSet::standard();
    let cols: Vec<(usize, &str)> = eh[1..]
        .iter()
        .map(|c| (set.column(c).unwrap_or_else(|| panic!("standard set lacks {c}")), c.as_str()))
        .collect();
    let sym = Symbol::new(name).unwrap();
    let mut state = set.new_state();
    let mut row = Values::default();
    let mut passed = 0;
    let mut failures = Vec::new();
    for (inp, exp) in input.iter().zip(&expected) {
        assert_eq!(inp[0], exp[0], "ts order differs");
        let f = |i: usize| inp[i].parse::<f64>().unwrap();
        let bar = Bar::new(sym, inp[0].parse::<i64>().unwrap() * 1000, f(1), f(2), f(3), f(4), f(5));
        set.update(&mut state, &bar, &mut row);
        for (j, &(col, cname)) in cols.iter().enumerate() {
            let e = exp.get(j + 1).map(String::as_str).unwrap_or("");
            let a = row.get(col);
            let ok = match (e.is_empty(), a) {
                (true, None) => true,
                (true, Some(_)) | (false, None) => false,
                (false, Some(a)) => {
                    let e: f64 = e.parse().unwrap();
                    (a - e).abs() <= (1e-9 * e.abs()).max(1e-9)
                }
            };
            if ok {
                passed += 1;
            } else {
                failures.push(format!("{name} ts={} {cname}: expected {e:?}, got {a:?}", inp[0]));
            }
        }
    }
    (passed, failures)
}

fn assert_series(name: &str, min_cells: usize) {
    let (passed, failures) = check_series(name);
    assert!(failures.is_empty(), "{} cells failed, first: {:#?}", failures.len(), &failures[..failures.len().min(10)]);
    assert!(passed >= min_cells, "only {passed} cells checked");
}

#[test]
fn syn_walk_matches_talib() {
    assert_series("SYN_WALK", 3000 * 15);
}

#[test]
fn syn_edge_matches_talib() {
    assert_series("SYN_EDGE", 612 * 15);
}

#[test]
fn syn_tiny_matches_talib() {
    assert_series("SYN_TINY", 1500 * 15);
}

#[test]
fn syn_huge_matches_talib() {
    assert_series("SYN_HUGE", 1500 * 15);
}
