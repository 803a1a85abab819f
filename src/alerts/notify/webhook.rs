//! Generic webhook: `POST <url>` with the [`AlertEvent`] as JSON and the alert id in the
//! `Idempotency-Key` header (receivers de-duplicate on it).

use super::{AlertEvent, Request};

/// The request for `event` to `url`.
///
/// ```
/// # use tickflow::alerts::notify::{AlertEvent, webhook};
/// let ev = AlertEvent::example();
/// let r = webhook::request(&ev, "http://127.0.0.1:9000/hook");
/// assert_eq!(r.headers[1], ("Idempotency-Key", ev.id.clone()));
/// assert!(String::from_utf8(r.body).unwrap().starts_with(r#"{"id":"#));
/// ```
pub fn request(event: &AlertEvent, url: &str) -> Request {
    Request {
        url: url.to_string(),
        headers: vec![("Content-Type", "application/json".into()), ("Idempotency-Key", event.id.clone())],
        // AlertEvent is plain strings and numbers: serializing cannot fail.
        body: serde_json::to_vec(event).expect("AlertEvent serializes"),
    }
}
