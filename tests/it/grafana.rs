//! The Grafana provisioning (`docker/grafana`, which is `deploy/k8s/base/grafana`) against what
//! tickflow really writes and exports:
//! - every dashboard is JSON, is in the Kubernetes dashboards ConfigMap, and every data source
//!   a panel, target or variable names is provisioned (same uid, same type);
//! - every SQL query reads only tables of the QuestDB sink's DDL and only their columns, for
//!   the indicator set of each deployment config (compose and Kubernetes);
//! - every PromQL query names only metrics the `/metrics` exporter renders, grouped by labels
//!   it sets;
//! - every `$variable` a query uses is defined by its dashboard;
//! - the market dashboard has a symbol variable, candlesticks, RSI, MACD, a signal-changes
//!   table and auto refresh; the pipeline dashboard shows rates, lags, the sink and busy time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use tickflow::config::Config;
use tickflow::sinks::questdb::Tables;
use tickflow::status::{ProcessMetrics, render_prometheus};
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn grafana_dir() -> PathBuf {
    root().join("docker/grafana")
}

fn yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())).remove(0)
}

/// The provisioned data sources: uid → type.
fn datasources() -> BTreeMap<String, String> {
    let doc = yaml(&grafana_dir().join("datasources.yaml"));
    doc["datasources"]
        .as_vec()
        .expect("datasources.yaml: a `datasources` list")
        .iter()
        .map(|d| {
            let uid = d["uid"].as_str().expect("every data source has a uid");
            (uid.to_owned(), d["type"].as_str().expect("every data source has a type").to_owned())
        })
        .collect()
}

/// Every dashboard file: name → JSON.
fn dashboards() -> BTreeMap<String, Value> {
    let dir = grafana_dir().join("dashboards");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with(".json"), "{name}: only dashboards (JSON) belong in {}", dir.display());
        let text = std::fs::read_to_string(&path).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        out.insert(name, json);
    }
    out
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// A query of a dashboard: where it is, its data source uid and its text.
struct Query {
    at: String,
    uid: String,
    text: String,
}

fn queries(name: &str, d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(d) {
        let title = p["title"].as_str().unwrap_or("?");
        let panel_uid = p["datasource"]["uid"].as_str().unwrap_or("");
        for t in p["targets"].as_array().into_iter().flatten() {
            let uid = t["datasource"]["uid"].as_str().unwrap_or(panel_uid).to_owned();
            let text = t["rawSql"].as_str().or(t["expr"].as_str()).unwrap_or_default().to_owned();
            out.push(Query { at: format!("{name} panel {title:?} target {}", t["refId"]), uid, text });
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = &v["query"];
            let text = q.as_str().or(q["query"].as_str()).unwrap_or_default().to_owned();
            let uid = v["datasource"]["uid"].as_str().unwrap_or("").to_owned();
            out.push(Query { at: format!("{name} variable {}", v["name"]), uid, text });
        }
    }
    out
}

/// Every `{"type", "uid"}` data source reference anywhere in a dashboard, with where it is.
fn datasource_refs(at: &str, v: &Value, out: &mut Vec<(String, String, String)>) {
    match v {
        Value::Object(m) => {
            if let Some(ds) = m.get("datasource").and_then(Value::as_object) {
                let s = |k: &str| ds.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let title = m.get("title").and_then(Value::as_str).or(m.get("name").and_then(Value::as_str));
                out.push((format!("{at} {}", title.unwrap_or("")), s("uid"), s("type")));
            }
            for (k, x) in m {
                datasource_refs(&format!("{at}/{k}"), x, out);
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| datasource_refs(&format!("{at}[{i}]"), x, out)),
        _ => {}
    }
}

// ------------------------------------------------------------------ SQL against the DDL

/// `table → columns` from `CREATE TABLE IF NOT EXISTS name (col TYPE, ...) ...` statements.
fn ddl_columns(ddl: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    ddl.iter()
        .map(|s| {
            let head =
                s.strip_prefix("CREATE TABLE IF NOT EXISTS ").expect("DDL starts with CREATE TABLE IF NOT EXISTS");
            let (name, rest) = head.split_once(" (").expect("DDL: name (columns)");
            let cols = rest.split_once(')').expect("DDL: closing parenthesis").0;
            let cols = cols.split(',').map(|c| c.split_whitespace().next().expect("column name").to_owned()).collect();
            (name.to_owned(), cols)
        })
        .collect()
}

/// The tables of every deployment config's sink (the QuestDB DDL tickflow runs at start,
/// alerts table included).
fn deployment_tables() -> Vec<(String, BTreeMap<String, BTreeSet<String>>)> {
    ["docker/cluster.toml", "deploy/k8s/base/cluster.toml"]
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(root().join(file)).unwrap();
            let mut cfg = Config::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            // Tokens come from the environment at run time; the tables do not depend on them.
            cfg.status.require_read_token = false;
            if let Some(a) = cfg.alerts.as_mut() {
                a.token.get_or_insert_with(|| "grafana-test-token-0123456789".to_owned());
            }
            let built = cfg.build().unwrap_or_else(|e| panic!("{file}: {e}"));
            let prefix = built.questdb.as_ref().map(|q| q.table_prefix.clone()).unwrap_or_default();
            let mut ddl = Tables::new(&built.set, &prefix).unwrap().ddl();
            ddl.push(tickflow::alerts::notify::alerts_ddl(&format!("{prefix}alerts")));
            (file.to_string(), ddl_columns(&ddl))
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Literal,
    Punct(char),
}

/// SQL tokens: string literals and numbers (`1m` too) become [`Tok::Literal`], and so do
/// Grafana's `$__macro` names and `$var` outside quotes (the macro's arguments, e.g. the `ts` of
/// `$__timeFilter(ts)`, stay tokens and are checked as columns).
fn tokens(sql: &str) -> Vec<Tok> {
    let cs: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c == '\'' {
            i += 1;
            while i < cs.len() && cs[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push(Tok::Literal);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '$' {
            i += 1;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Literal);
        } else {
            if !c.is_whitespace() {
                out.push(Tok::Punct(c));
            }
            i += 1;
        }
    }
    out
}

const SQL_KEYWORDS: &[&str] = &[
    "select",
    "distinct",
    "from",
    "where",
    "and",
    "or",
    "not",
    "as",
    "order",
    "by",
    "asc",
    "desc",
    "limit",
    "latest",
    "on",
    "partition",
    "sample",
    "align",
    "to",
    "calendar",
    "group",
    "in",
    "between",
    "is",
    "null",
    "fill",
];
/// QuestDB functions the dashboards may call.
const SQL_FUNCTIONS: &[&str] = &["count", "first", "last", "min", "max", "avg", "sum", "dateadd", "now"];

/// Problems with one query against one deployment's tables.
fn check_sql(sql: &str, tables: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let toks = tokens(sql);
    let mut problems = Vec::new();
    let mut from = Vec::new();
    let mut aliases = BTreeSet::new();
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(w) = t else { continue };
        match (w.to_ascii_lowercase().as_str(), toks.get(i + 1)) {
            ("from", Some(Tok::Ident(t))) => from.push(t.clone()),
            ("as", Some(Tok::Ident(a))) => {
                aliases.insert(a.clone());
            }
            _ => {}
        }
    }
    if from.is_empty() {
        problems.push("reads no table".to_owned());
    }
    for t in &from {
        if !tables.contains_key(t) {
            problems.push(format!("table {t} is not one the sink creates ({:?})", tables.keys().collect::<Vec<_>>()));
        }
    }
    let columns: BTreeSet<&String> = from.iter().filter_map(|t| tables.get(t)).flatten().collect();
    for (i, t) in toks.iter().enumerate() {
        let Tok::Ident(w) = t else { continue };
        let lower = w.to_ascii_lowercase();
        let call = toks.get(i + 1) == Some(&Tok::Punct('('));
        if call {
            if !SQL_FUNCTIONS.contains(&lower.as_str()) {
                problems.push(format!("function {w}() is not one the check knows QuestDB has"));
            }
            continue;
        }
        let after_from_or_as = i > 0
            && matches!(&toks[i - 1], Tok::Ident(p) if p.eq_ignore_ascii_case("from") || p.eq_ignore_ascii_case("as"));
        if SQL_KEYWORDS.contains(&lower.as_str()) || after_from_or_as || aliases.contains(w) {
            continue;
        }
        if !columns.contains(w) {
            problems.push(format!("column {w} is not in {from:?}"));
        }
    }
    problems
}

// ------------------------------------------------------------------ PromQL against /metrics

/// Metric families the exporter renders (`# TYPE` lines are written for every family, with
/// or without samples).
fn exported_metrics() -> BTreeSet<String> {
    let metrics = Arc::new(ProcessMetrics::with_system_clock(0, 0..2));
    render_prometheus(&metrics)
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

/// The labels the exporter sets (src/status/prometheus.rs: "Labels are only ...").
const LABELS: &[&str] = &["process", "worker", "topic", "partition", "operator"];

fn check_promql(expr: &str, exported: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let names: Vec<&str> =
        expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("tickflow_")).collect();
    if names.is_empty() {
        problems.push("names no tickflow metric".to_owned());
    }
    for n in names {
        if !exported.contains(n) {
            problems.push(format!("metric {n} is not exported by /metrics"));
        }
    }
    // Labels in `by (...)`, `{label=...}` matchers and label_values(metric, label).
    let mut labels = Vec::new();
    for (open, close, after) in [("by (", ')', ""), ("{", '}', ""), ("label_values(", ')', ",")] {
        let mut rest = expr;
        while let Some(at) = rest.find(open) {
            let inner = &rest[at + open.len()..];
            let end = inner.find(close).unwrap_or(inner.len());
            let body = &inner[..end];
            let body = if after.is_empty() { body } else { body.split_once(after).map_or("", |(_, l)| l) };
            for part in body.split(',') {
                let label = part.split(['=', '!', '~']).next().unwrap_or("").trim();
                if !label.is_empty() {
                    labels.push(label.to_owned());
                }
            }
            rest = &inner[end..];
        }
    }
    for l in labels {
        if !LABELS.contains(&l.as_str()) {
            problems.push(format!("label {l} is not one the exporter sets ({LABELS:?})"));
        }
    }
    problems
}

// ------------------------------------------------------------------ the tests

#[test]
fn docker_grafana_is_the_kubernetes_provisioning() {
    let docker = std::fs::canonicalize(grafana_dir()).unwrap();
    let k8s = std::fs::canonicalize(root().join("deploy/k8s/base/grafana")).unwrap();
    assert_eq!(docker, k8s, "docker/grafana must be the same folder as deploy/k8s/base/grafana (one copy)");
    let kustomization = yaml(&root().join("deploy/k8s/base/kustomization.yaml"));
    let generated: BTreeSet<String> = kustomization["configMapGenerator"]
        .as_vec()
        .unwrap()
        .iter()
        .filter(|g| g["name"].as_str() == Some("grafana-dashboards"))
        .flat_map(|g| g["files"].as_vec().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()))
        .collect();
    let files: BTreeSet<String> = dashboards().keys().map(|n| format!("grafana/dashboards/{n}")).collect();
    assert_eq!(generated, files, "the grafana-dashboards ConfigMap must hold every dashboard file");
}

#[test]
fn every_data_source_a_dashboard_names_is_provisioned() {
    let sources = datasources();
    assert_eq!(sources.get("questdb").map(String::as_str), Some("postgres"), "{sources:?}");
    assert_eq!(sources.get("prometheus").map(String::as_str), Some("prometheus"), "{sources:?}");
    let mut bad = Vec::new();
    for (name, d) in dashboards() {
        let mut refs = Vec::new();
        datasource_refs(&name, &d, &mut refs);
        assert!(!refs.is_empty(), "{name}: no data source");
        for (at, uid, ty) in refs {
            match sources.get(&uid) {
                None => bad.push(format!("{at}: data source uid {uid:?} is not provisioned")),
                Some(t) if !ty.is_empty() && *t != ty => bad.push(format!("{at}: {uid} is a {t}, not a {ty}")),
                Some(_) => {}
            }
        }
        for q in queries(&name, &d) {
            if !sources.contains_key(&q.uid) {
                bad.push(format!("{}: no provisioned data source (uid {:?})", q.at, q.uid));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_sql_query_names_tables_and_columns_of_the_sink_ddl() {
    let sources = datasources();
    let deployments = deployment_tables();
    let mut checked = 0;
    let mut bad = Vec::new();
    for (name, d) in dashboards() {
        for q in queries(&name, &d).into_iter().filter(|q| sources.get(&q.uid).map(String::as_str) == Some("postgres"))
        {
            checked += 1;
            for (file, tables) in &deployments {
                bad.extend(
                    check_sql(&q.text, tables).into_iter().map(|p| format!("{} ({file}): {p}\n  {}", q.at, q.text)),
                );
            }
        }
    }
    assert!(checked >= 10, "only {checked} SQL queries found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_sql_check_catches_unknown_tables_columns_and_functions() {
    let tables = ddl_columns(&[
        "CREATE TABLE IF NOT EXISTS bars (ts TIMESTAMP, symbol SYMBOL, close DOUBLE) TIMESTAMP(ts)".into(),
    ]);
    assert_eq!(
        check_sql("SELECT ts AS time, close FROM bars WHERE symbol = '$symbol' AND $__timeFilter(ts)", &tables),
        Vec::<String>::new()
    );
    assert_eq!(
        check_sql("SELECT ts, closing_price, frob(close) FROM bars SAMPLE BY 1m", &tables),
        vec!["column closing_price is not in [\"bars\"]", "function frob() is not one the check knows QuestDB has"]
    );
    assert_eq!(check_sql("SELECT * FROM stocks", &tables)[0], "table stocks is not one the sink creates ([\"bars\"])");
}

#[test]
fn every_promql_query_names_exported_metrics_and_labels() {
    let sources = datasources();
    let exported = exported_metrics();
    assert!(exported.contains("tickflow_bars_in_total"), "{exported:?}");
    let mut checked = 0;
    let mut bad = Vec::new();
    for (name, d) in dashboards() {
        for q in
            queries(&name, &d).into_iter().filter(|q| sources.get(&q.uid).map(String::as_str) == Some("prometheus"))
        {
            checked += 1;
            bad.extend(check_promql(&q.text, &exported).into_iter().map(|p| format!("{}: {p}\n  {}", q.at, q.text)));
        }
    }
    assert!(checked >= 10, "only {checked} PromQL queries found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert_eq!(
        check_promql("sum by (symbol) (rate(tickflow_bars_total{process=~\"$process\"}[1m]))", &exported),
        vec![
            "metric tickflow_bars_total is not exported by /metrics",
            "label symbol is not one the exporter sets ([\"process\", \"worker\", \"topic\", \"partition\", \"operator\"])"
        ]
    );
}

#[test]
fn every_variable_a_query_uses_is_defined() {
    let mut bad = Vec::new();
    for (name, d) in dashboards() {
        let defined: BTreeSet<String> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        let mut texts: Vec<(String, String)> = queries(&name, &d).into_iter().map(|q| (q.at, q.text)).collect();
        texts.extend(
            panels(&d).iter().map(|p| (format!("{name} panel title"), p["title"].as_str().unwrap_or("").to_owned())),
        );
        for (at, text) in texts {
            for var in text.split('$').skip(1) {
                let var: String = var.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !var.starts_with("__") && !defined.contains(&var) {
                    bad.push(format!("{at}: ${var} is not a variable of {name} ({defined:?})"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_market_dashboard_has_a_symbol_candles_indicators_signals_and_refreshes() {
    let all = dashboards();
    let d = &all["market.json"];
    assert!(d["refresh"].as_str().is_some_and(|r| !r.is_empty()), "market: no auto refresh");
    let vars: Vec<&str> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert!(vars.contains(&"symbol"), "market: no symbol variable ({vars:?})");
    let ps = panels(d);
    let sql = |p: &Value| {
        p["targets"].as_array().unwrap().iter().map(|t| t["rawSql"].as_str().unwrap_or("")).collect::<String>()
    };
    let has = |ty: &str, needle: &str| ps.iter().any(|p| p["type"] == ty && sql(p).contains(needle));
    assert!(has("candlestick", "FROM candles"), "market: no candlestick panel over candles");
    assert!(
        has("candlestick", "sma_20") && has("candlestick", "bb_upper"),
        "market: candles without indicator overlays"
    );
    assert!(has("timeseries", "rsi_14"), "market: no RSI panel");
    assert!(has("timeseries", "macd_signal"), "market: no MACD panel");
    assert!(has("table", "FROM signal_changes"), "market: no signal changes table");
    assert!(
        ps.iter().all(|p| sql(p).contains("$symbol") || p["title"].as_str().unwrap().contains("per symbol")),
        "market: a panel ignores $symbol"
    );
}

#[test]
fn the_pipeline_dashboard_shows_rates_lags_sink_and_busy() {
    let all = dashboards();
    let d = &all["pipeline.json"];
    let exprs: String = panels(d)
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap_or("").to_owned()))
        .collect::<Vec<_>>()
        .join("\n");
    for metric in [
        "rate(tickflow_bars_in_total",
        "rate(tickflow_bars_out_total",
        "tickflow_watermark_lag_seconds",
        "tickflow_kafka_partition_lag",
        "tickflow_sink_backlog_rows",
        "rate(tickflow_sink_rows_total",
        "rate(tickflow_busy_seconds_total",
    ] {
        assert!(exprs.contains(metric), "pipeline: nothing shows {metric}");
    }
    assert!(!exprs.contains("tickflow_up"), "pipeline: tickflow_up may be dropped by the exporter; use tickflow_ready");
}
