//! Telegram Bot API: `POST {base}/bot{token}/sendMessage` with `{"chat_id", "text"}`.

use super::{AlertEvent, Request};

/// The request for `event` to `chat_id` through the bot `token` at `base` (no trailing `/`).
pub fn request(event: &AlertEvent, base: &str, token: &str, chat_id: &str) -> Request {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        chat_id: &'a str,
        text: String,
    }
    Request {
        url: format!("{}/bot{token}/sendMessage", base.trim_end_matches('/')),
        headers: vec![("Content-Type", "application/json".into())],
        // Two strings: serializing cannot fail.
        body: serde_json::to_vec(&Body { chat_id, text: event.text() }).expect("JSON serializes"),
    }
}
