//! One HTTP GET: status, `Retry-After` and body, with a body limit and a global timeout.
//! The [`Fetch`] trait is the seam the poller talks to; [`UreqFetch`] is the real client.

use std::time::Duration;

/// Whether this build's HTTP client speaks TLS: ureq is built with its `rustls` feature
/// (root `Cargo.toml`, webpki roots), so `https://` base URLs work directly.
pub const HTTPS_SUPPORTED: bool = true;

/// Largest response body read (Alpha Vantage's `outputsize=full` for 1min is a few MB).
pub const MAX_BODY_BYTES: u64 = 64 << 20;

/// An HTTP answer of any status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// No HTTP answer: connection refused or reset, timeout, body too large or cut.
/// Always retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GET {url}: {message}")]
pub struct FetchError {
    /// The URL, with any `apikey` redacted.
    pub url: String,
    /// What went wrong.
    pub message: String,
}

/// Something that can GET a URL.
pub trait Fetch {
    /// GETs `url`; any status is an `Ok` answer.
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError>;
}

/// The blocking ureq client.
#[derive(Debug, Clone)]
pub struct UreqFetch {
    agent: ureq::Agent,
}

impl UreqFetch {
    /// A client whose every request (connect, send, read the body) ends within `timeout`.
    pub fn new(timeout: Duration) -> UreqFetch {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("tickflow-connector/", env!("CARGO_PKG_VERSION")))
            .build();
        UreqFetch { agent: ureq::Agent::new_with_config(config) }
    }
}

impl Fetch for UreqFetch {
    fn get(&self, url: &str) -> Result<HttpResponse, FetchError> {
        let err = |e: ureq::Error| FetchError { url: redact(url), message: e.to_string() };
        let mut resp = self.agent.get(url).header("accept", "application/json").call().map_err(err)?;
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.body_mut().with_config().limit(MAX_BODY_BYTES).read_to_vec().map_err(err)?;
        Ok(HttpResponse { status, retry_after, body })
    }
}

/// `url` with the value of an `apikey` query parameter replaced by `***`, for messages.
///
/// ```
/// use tickflow::connectors::http::redact;
/// assert_eq!(redact("http://h/query?symbol=IBM&apikey=SECRET&x=1"), "http://h/query?symbol=IBM&apikey=***&x=1");
/// ```
pub fn redact(url: &str) -> String {
    match url.find("apikey=") {
        None => url.to_string(),
        Some(i) => {
            let start = i + "apikey=".len();
            let end = url[start..].find('&').map_or(url.len(), |j| start + j);
            format!("{}***{}", &url[..start], &url[end..])
        }
    }
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved characters).
///
/// ```
/// use tickflow::connectors::http::encode_component;
/// assert_eq!(encode_component("a b/c~"), "a%20b%2Fc~");
/// ```
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
