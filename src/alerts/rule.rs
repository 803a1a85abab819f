//! Rules as users write them (the `/rules` JSON and the rules topic's values), their
//! validation, and their lowering to the dataflow's [`AlertRule`].
//!
//! ```json
//! {"id": "aapl-oversold", "owner": "alice", "symbol": "AAPL", "condition": "rsi_14 < 30",
//!  "timeframe": "bar", "channel": {"type": "webhook", "url": "http://127.0.0.1:9000/hook"},
//!  "cooldown": "5m"}
//! ```
//! Conditions: `price > 101.5`, `price < 99`, `price outside 95..105` (leaves the range),
//! `<column> > x`, `<column> < x`, `<column> crosses above x`, `<column> crosses below x`,
//! `signal = BUY`, `signal = SELL`. `price` (or `close`) is the bar's (candle's) close;
//! columns are the indicator set's (`rsi_14`, `sma_20`, `macd`, ...).

use serde::{Deserialize, Serialize};
use tickflow_operators::dataflow::alerts::{
    AlertRule, COLUMN_SLOT, Condition, PRICE_SLOT, SIGNAL_BUY, SIGNAL_SELL, to_fixed,
};
use tickflow_operators::rows::timeframe_label;
use tickflow_operators::time::Millis;
use tickflow_operators::{IndicatorSet, Symbol};

use super::notify::target::{TargetPolicy, redact_url};

/// A rule as stored and served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Unique id: 1–64 of `[A-Za-z0-9._-]`.
    pub id: String,
    /// Who the rule is for (free text, at most 64 characters).
    #[serde(default)]
    pub owner: String,
    /// A symbol, or `*` for every symbol.
    pub symbol: String,
    /// The condition (see the module docs).
    pub condition: String,
    /// `bar` (every enriched bar) or a configured candle timeframe such as `1m`.
    #[serde(default = "default_timeframe")]
    pub timeframe: String,
    /// Where alerts go.
    pub channel: Channel,
    /// Least event time between two alerts of this rule for one symbol, e.g. `5m`; `0s`
    /// means only the "stopped holding" condition applies.
    #[serde(default = "default_cooldown")]
    pub cooldown: String,
}

fn default_timeframe() -> String {
    "bar".into()
}
fn default_cooldown() -> String {
    "0s".into()
}

/// Where a rule's alerts are delivered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Channel {
    /// JSON POST of the alert to `url`.
    Webhook {
        /// `http://host[:port]/path`.
        url: String,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The incoming-webhook URL.
        url: String,
    },
    /// Telegram `sendMessage` to a chat (the bot token is in the config).
    Telegram {
        /// The chat id (a number, or `@channelname`).
        chat_id: String,
    },
}

impl Channel {
    /// The rate-limit key of the channel: its URL or chat.
    pub fn key(&self) -> String {
        match self {
            Channel::Webhook { url } | Channel::Slack { url } => url.clone(),
            Channel::Telegram { chat_id } => format!("telegram:{chat_id}"),
        }
    }

    /// The channel as it may be shown (API answers, logs): URL secrets replaced by `***`
    /// (see [`redact_url`]).
    pub fn redacted(&self) -> Channel {
        match self {
            Channel::Webhook { url } => Channel::Webhook { url: redact_url(url, false) },
            Channel::Slack { url } => Channel::Slack { url: redact_url(url, true) },
            Channel::Telegram { chat_id } => Channel::Telegram { chat_id: chat_id.clone() },
        }
    }
}

/// What a rule may refer to: the indicator columns and the candle timeframes of the
/// cluster, and the hosts its channel may point at.
#[derive(Clone, Debug, Default)]
pub struct RuleContext {
    /// The indicator set's columns, in row order.
    pub columns: Vec<String>,
    /// The configured candle timeframes, ms.
    pub timeframes: Vec<Millis>,
    /// `alerts.allowed-hosts`.
    pub targets: TargetPolicy,
    /// Whether `alerts.telegram-bot-token` is set: without it a Telegram channel can never
    /// deliver, so such a rule is refused when it is posted.
    pub telegram_ready: bool,
}

impl RuleContext {
    /// From the cluster's indicator set and window timeframes; any public host allowed.
    pub fn new(set: &IndicatorSet, timeframes: &[Millis]) -> RuleContext {
        RuleContext {
            columns: set.columns().to_vec(),
            timeframes: timeframes.to_vec(),
            targets: TargetPolicy::default(),
            telegram_ready: true,
        }
    }

    /// The same, saying whether a Telegram bot token is configured.
    pub fn with_telegram(mut self, ready: bool) -> RuleContext {
        self.telegram_ready = ready;
        self
    }

    /// What this deployment lacks for `rule`'s channel to deliver (empty: nothing). Checked
    /// when a rule is posted; rules already in the topic still load (their alerts are
    /// dead-lettered with the reason).
    pub fn prerequisites(&self, rule: &RuleDef) -> Vec<String> {
        match &rule.channel {
            Channel::Telegram { .. } if !self.telegram_ready => vec![
                "channel: a telegram channel needs alerts.telegram-bot-token in the cluster config \
                 (or TICKFLOW_TELEGRAM_BOT_TOKEN with tickflow-entrypoint); none is set, so every alert \
                 would be dead-lettered"
                    .into(),
            ],
            _ => Vec::new(),
        }
    }

    /// The same with channel targets limited by `targets`.
    pub fn with_targets(mut self, targets: TargetPolicy) -> RuleContext {
        self.targets = targets;
        self
    }
}

fn num(text: &str, field: &str, errors: &mut Vec<String>) -> i64 {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x.abs() < 9.2e10 => to_fixed(x),
        _ => {
            errors
                .push(format!("{field}: {text:?} is not a number (|x| < 9.2e10); expected e.g. \"30\" or \"101.25\""));
            0
        }
    }
}

/// Parses a condition against `columns`.
///
/// ```
/// use tickflow::alerts::rule::parse_condition;
/// use tickflow_operators::dataflow::alerts::{Condition, to_fixed};
/// let cols = vec!["sma_5".to_string(), "rsi_14".to_string()];
/// assert_eq!(parse_condition("rsi_14 < 30", &cols), Ok(Condition::Below { slot: 3, value: to_fixed(30.0) }));
/// assert!(parse_condition("rsi_99 < 30", &cols).unwrap_err()[0].contains("unknown column"));
/// ```
pub fn parse_condition(text: &str, columns: &[String]) -> Result<Condition, Vec<String>> {
    let mut errors = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    let f = "condition";
    let slot = |name: &str, errors: &mut Vec<String>| -> u16 {
        match name {
            "price" | "close" => PRICE_SLOT as u16,
            c => match columns.iter().position(|x| x == c) {
                Some(i) => (COLUMN_SLOT + i) as u16,
                None => {
                    errors.push(format!(
                        "{f}: unknown column {c:?}; expected \"price\" or one of {}",
                        columns.join(", ")
                    ));
                    0
                }
            },
        }
    };
    let cond = match words.as_slice() {
        ["signal", "=" | "==", to] => match to.to_ascii_uppercase().as_str() {
            "BUY" => Condition::SignalTo { to: SIGNAL_BUY },
            "SELL" => Condition::SignalTo { to: SIGNAL_SELL },
            _ => {
                errors.push(format!("{f}: signal {to:?} is not BUY or SELL; expected e.g. \"signal = BUY\""));
                Condition::SignalTo { to: SIGNAL_BUY }
            }
        },
        [lhs, ">", x] => Condition::Above { slot: slot(lhs, &mut errors), value: num(x, f, &mut errors) },
        [lhs, "<", x] => Condition::Below { slot: slot(lhs, &mut errors), value: num(x, f, &mut errors) },
        [lhs, "crosses", "above", x] => {
            Condition::CrossesAbove { slot: slot(lhs, &mut errors), value: num(x, f, &mut errors) }
        }
        [lhs, "crosses", "below", x] => {
            Condition::CrossesBelow { slot: slot(lhs, &mut errors), value: num(x, f, &mut errors) }
        }
        [lhs, "outside", range] => {
            let s = slot(lhs, &mut errors);
            match range.split_once("..") {
                Some((a, b)) => {
                    let (low, high) = (num(a, f, &mut errors), num(b, f, &mut errors));
                    if low > high {
                        errors.push(format!("{f}: range {range:?} has low above high; expected e.g. \"95..105\""));
                    }
                    Condition::Outside { slot: s, low, high }
                }
                None => {
                    errors.push(format!("{f}: range {range:?} is not LOW..HIGH; expected e.g. \"95..105\""));
                    Condition::Outside { slot: s, low: 0, high: 0 }
                }
            }
        }
        _ => {
            errors.push(format!(
                "{f}: {text:?} is not understood; expected e.g. \"price > 101.5\", \"price outside 95..105\", \
                 \"rsi_14 < 30\", \"macd crosses above 0\", \"signal = BUY\""
            ));
            Condition::SignalTo { to: SIGNAL_BUY }
        }
    };
    if errors.is_empty() { Ok(cond) } else { Err(errors) }
}

impl RuleDef {
    /// The rule as it may be shown to API clients: channel secrets redacted.
    pub fn redacted(&self) -> RuleDef {
        RuleDef { channel: self.channel.redacted(), ..self.clone() }
    }

    /// Validates the rule against `ctx` and lowers it for the dataflow (`meta` = this rule as
    /// JSON, so a notification has the owner and channel). Every problem is reported.
    pub fn lower(&self, ctx: &RuleContext) -> Result<AlertRule, Vec<String>> {
        let mut errors = Vec::new();
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !id_ok {
            errors.push(format!("id: {:?} must be 1-64 of [A-Za-z0-9._-]; expected e.g. \"aapl-oversold\"", self.id));
        }
        if self.owner.chars().count() > 64 {
            errors.push("owner: longer than 64 characters; expected e.g. \"alice\"".into());
        }
        let symbol = if self.symbol == "*" {
            None
        } else {
            match Symbol::new(&self.symbol) {
                Ok(s) => Some(s),
                Err(e) => {
                    errors.push(format!("symbol: {:?}: {e}; expected e.g. \"AAPL\" or \"*\"", self.symbol));
                    None
                }
            }
        };
        let condition = parse_condition(&self.condition, &ctx.columns).map_err(|e| errors.extend(e)).ok();
        let timeframe = if self.timeframe == "bar" {
            0
        } else {
            match humantime::parse_duration(&self.timeframe).map(|d| d.as_millis() as Millis) {
                Ok(ms) if ctx.timeframes.contains(&ms) => ms,
                _ => {
                    let known: Vec<String> =
                        std::iter::once(0).chain(ctx.timeframes.iter().copied()).map(timeframe_label).collect();
                    errors.push(format!(
                        "timeframe: {:?} is not configured; expected one of {}",
                        self.timeframe,
                        known.join(", ")
                    ));
                    0
                }
            }
        };
        let cooldown_ms = match humantime::parse_duration(&self.cooldown) {
            Ok(d) => d.as_millis().min(i64::MAX as u128) as Millis,
            Err(_) => {
                errors.push(format!("cooldown: {:?} is not a duration; expected e.g. \"5m\" or \"0s\"", self.cooldown));
                0
            }
        };
        match &self.channel {
            Channel::Webhook { url } | Channel::Slack { url } => {
                if let Err(e) = ctx.targets.check_url("channel.url", url) {
                    errors.push(e);
                }
            }
            Channel::Telegram { chat_id } => {
                let ok = chat_id.strip_prefix('@').map_or_else(
                    || chat_id.strip_prefix('-').unwrap_or(chat_id).bytes().all(|b| b.is_ascii_digit()),
                    |name| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                );
                if chat_id.is_empty() || chat_id == "@" || chat_id == "-" || !ok || chat_id.len() > 64 {
                    errors.push(format!(
                        "channel.chat_id: {chat_id:?} is not a chat id (a number, or @name of letters, digits, _); \
                         expected e.g. \"123456789\" or \"@alerts\""
                    ));
                }
            }
        }
        match (errors.is_empty(), condition) {
            (true, Some(condition)) => Ok(AlertRule {
                id: self.id.clone(),
                symbol,
                timeframe,
                condition,
                cooldown_ms,
                // A RuleDef is plain strings: serializing cannot fail.
                meta: serde_json::to_string(self).expect("RuleDef serializes"),
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RuleContext {
        RuleContext::new(&IndicatorSet::standard(), &[60_000])
    }

    fn rule(json: &str) -> RuleDef {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn lowers_a_valid_rule() {
        let r = rule(
            r#"{"id":"a","symbol":"AAPL","condition":"price outside 95..105","timeframe":"1m",
                "channel":{"type":"slack","url":"https://hooks.slack.com/services/T/B/X"},"cooldown":"5m"}"#,
        );
        let a = r.lower(&ctx()).unwrap();
        assert_eq!(a.timeframe, 60_000);
        assert_eq!(a.cooldown_ms, 300_000);
        assert_eq!(a.condition, Condition::Outside { slot: 0, low: to_fixed(95.0), high: to_fixed(105.0) });
        assert_eq!(serde_json::from_str::<RuleDef>(&a.meta).unwrap(), r);
        assert_eq!(r.redacted().channel, Channel::Slack { url: "https://hooks.slack.com/***".into() });
    }

    #[test]
    fn channel_targets_are_validated() {
        let msg = |channel: &str| {
            let r = rule(&format!(r#"{{"id":"a","symbol":"*","condition":"price > 1","channel":{channel}}}"#));
            r.lower(&ctx()).unwrap_err().join("\n")
        };
        assert_eq!(
            msg(r#"{"type":"webhook","url":"http://169.254.169.254/latest"}"#),
            "channel.url: host \"169.254.169.254\" is link-local (cloud metadata lives here); such targets are \
             refused unless listed in alerts.allowed-hosts, e.g. allowed-hosts = [\"169.254.169.254\"]"
        );
        assert!(msg(r#"{"type":"slack","url":"https://hooks.slack.com/a\r\nb"}"#).contains("has CR at byte 25"));
        assert_eq!(
            msg(r#"{"type":"telegram","chat_id":"12\n3"}"#),
            "channel.chat_id: \"12\\n3\" is not a chat id (a number, or @name of letters, digits, _); expected e.g. \
             \"123456789\" or \"@alerts\""
        );
        let listed = ctx().with_targets(TargetPolicy::new(["127.0.0.1"]));
        let local = rule(
            r#"{"id":"a","symbol":"*","condition":"price > 1","channel":{"type":"webhook","url":"http://127.0.0.1:9/h"}}"#,
        );
        assert!(local.lower(&listed).is_ok());
        assert!(local.lower(&ctx()).is_err());
    }

    #[test]
    fn reports_every_error_with_field_and_example() {
        let r = rule(
            r#"{"id":"bad id","symbol":"a b","condition":"rsi_99 < x","timeframe":"7m",
                "channel":{"type":"webhook","url":"ftp://x"},"cooldown":"later"}"#,
        );
        let e = r.lower(&ctx()).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|m| m.split(':').next().unwrap()).collect();
        assert_eq!(
            fields,
            ["id", "symbol", "condition", "condition", "timeframe", "cooldown", "channel.url"],
            "{e:#?}"
        );
        assert!(e[4].contains("expected one of bar, 1m"), "{}", e[4]);
        assert!(
            serde_json::from_str::<RuleDef>(
                r#"{"id":"a","symbol":"*","condition":"x","channel":{"type":"webhook","url":"http://a"},"extra":1}"#
            )
            .is_err()
        );
    }
}
