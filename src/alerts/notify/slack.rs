//! Slack incoming webhook: `POST <url>` with `{"text": ...}`.

use super::{AlertEvent, Request};

/// The request for `event` to the incoming-webhook `url`.
pub fn request(event: &AlertEvent, url: &str) -> Request {
    Request {
        url: url.to_string(),
        headers: vec![("Content-Type", "application/json".into())],
        // A map of one string: serializing cannot fail.
        body: serde_json::to_vec(&serde_json::json!({ "text": event.text() })).expect("JSON serializes"),
    }
}
