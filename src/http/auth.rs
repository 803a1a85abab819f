//! Bearer tokens: the one place a request's `Authorization` header is checked.
//!
//! Every listener (the gateway's `/ingest`, the status server's `/rules` and, when asked,
//! the read endpoints) calls [`Tokens::check`]: the scheme is matched case-insensitively
//! (`Bearer`, `bearer`, `BEARER`, RFC 9110 §11.1), and every configured token is compared in
//! time that depends only on the configured token's length, never on where the first
//! difference is or which token matched.
//!
//! [`require_off_loopback`] is the start-up rule behind "secure by default": an API that
//! writes must not listen on a non-loopback address without a token.

use std::fmt;
use std::net::SocketAddr;

/// Shortest token accepted by the configs (bytes).
pub const MIN_TOKEN_LEN: usize = 16;

/// A set of accepted bearer tokens. Empty = no authentication. `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens(Vec<Vec<u8>>);

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokens({} redacted)", self.0.len())
    }
}

/// Why [`Tokens::check`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("missing Authorization header; expected \"Authorization: Bearer <token>\"")]
    Missing,
    /// A header with another scheme or no token.
    #[error("Authorization header is not \"Bearer <token>\"")]
    Malformed,
    /// A bearer token that is not one of the configured ones.
    #[error("bearer token not accepted")]
    Wrong,
}

impl Tokens {
    /// No tokens: every request is allowed.
    pub fn none() -> Tokens {
        Tokens(Vec::new())
    }

    /// The non-empty entries of `tokens` (surrounding whitespace trimmed).
    pub fn new<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Tokens {
        Tokens(tokens.into_iter().map(|t| t.as_ref().trim().as_bytes().to_vec()).filter(|t| !t.is_empty()).collect())
    }

    /// Both sets: a request passes with a token of either.
    pub fn union(&self, other: &Tokens) -> Tokens {
        Tokens(self.0.iter().chain(&other.0).cloned().collect())
    }

    /// Whether no token is configured (then [`Tokens::check`] allows everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks an `Authorization` header value. `Ok` when no token is configured or the
    /// header carries one of them.
    ///
    /// ```
    /// use tickflow::http::auth::{AuthError, Tokens};
    /// let t = Tokens::new(["0123456789abcdef"]);
    /// assert_eq!(t.check(Some("Bearer 0123456789abcdef")), Ok(()));
    /// assert_eq!(t.check(Some("bearer  0123456789abcdef ")), Ok(()));
    /// assert_eq!(t.check(Some("Bearer 0123456789abcdeX")), Err(AuthError::Wrong));
    /// assert_eq!(t.check(Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l")), Err(AuthError::Malformed));
    /// assert_eq!(t.check(None), Err(AuthError::Missing));
    /// assert_eq!(Tokens::none().check(None), Ok(()));
    /// ```
    pub fn check(&self, header: Option<&str>) -> Result<(), AuthError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let header = header.ok_or(AuthError::Missing)?;
        let given = bearer(header).ok_or(AuthError::Malformed)?;
        // Compare with every token, so the time does not tell which one matched.
        let ok = self.0.iter().fold(false, |ok, t| ok | same_secret(t, given.as_bytes()));
        if ok { Ok(()) } else { Err(AuthError::Wrong) }
    }
}

impl Tokens {
    /// Which configured token the header carries: `Ok(Some(index))` in the order they were
    /// given, `Ok(None)` for a well-formed bearer header with another token. Every token is
    /// compared, and the index is selected without branching on the comparison, so the time
    /// tells neither whether nor which token matched.
    ///
    /// ```
    /// use tickflow::http::auth::{AuthError, Tokens};
    /// let t = Tokens::new(["alice-0123456789ab", "bob-0123456789abcd"]);
    /// assert_eq!(t.matching(Some("Bearer bob-0123456789abcd")), Ok(Some(1)));
    /// assert_eq!(t.matching(Some("Bearer someone-else-0123")), Ok(None));
    /// assert_eq!(t.matching(None), Err(AuthError::Missing));
    /// ```
    pub fn matching(&self, header: Option<&str>) -> Result<Option<usize>, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let given = bearer(header).ok_or(AuthError::Malformed)?;
        let mut found = usize::MAX;
        for (i, t) in self.0.iter().enumerate() {
            let mask = usize::from(same_secret(t, given.as_bytes())).wrapping_neg();
            found = (i & mask) | (found & !mask);
        }
        Ok((found != usize::MAX).then_some(found))
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive, spaces or tabs in
/// between, surrounding whitespace ignored).
fn bearer(header: &str) -> Option<&str> {
    let h = header.trim();
    let (scheme, rest) = h.split_once([' ', '\t'])?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `expected == given` in time that depends only on `expected.len()`.
fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != given.len());
    for (i, &e) in expected.iter().enumerate() {
        // Past the end of `given` compare with a byte that cannot make the result true
        // (the length check above already failed).
        let g = given.get(i).copied().unwrap_or(!e);
        diff |= std::hint::black_box(e ^ g);
    }
    diff == 0
}

/// Whether `addr` is reachable from this host only.
pub fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// The start-up rule for write APIs: listening on a non-loopback address needs a token.
/// `key` is the config key that sets one, `env` the env var that does, `what` the API.
///
/// ```
/// use tickflow::http::auth::{Tokens, require_off_loopback};
/// let open = Tokens::none();
/// assert!(require_off_loopback("127.0.0.1:8080".parse().unwrap(), &open, "/ingest", "gateway.tokens", "TICKFLOW_GATEWAY_TOKENS").is_ok());
/// let e = require_off_loopback("0.0.0.0:8080".parse().unwrap(), &open, "/ingest", "gateway.tokens", "TICKFLOW_GATEWAY_TOKENS").unwrap_err();
/// assert!(e.starts_with("gateway.tokens: /ingest would listen on 0.0.0.0:8080 (not loopback) without a token"), "{e}");
/// ```
pub fn require_off_loopback(addr: SocketAddr, tokens: &Tokens, what: &str, key: &str, env: &str) -> Result<(), String> {
    if is_loopback(addr) || !tokens.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{key}: {what} would listen on {addr} (not loopback) without a token, so anyone who can reach the port \
         could use it; set a secret of at least {MIN_TOKEN_LEN} characters with {env}=<secret> (or {key} in the \
         config file), or listen on 127.0.0.1"
    ))
}

/// Config-side check of one token: printable ASCII, no spaces, at least [`MIN_TOKEN_LEN`]
/// bytes. The message names `key` and never echoes the secret.
pub fn validate_token(key: &str, token: &str) -> Option<String> {
    let ok = token.len() >= MIN_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_graphic());
    (!ok).then(|| {
        format!(
            "{key}: a token of {} bytes; expected at least {MIN_TOKEN_LEN} printable ASCII characters without \
             spaces, e.g. \"4f9c2d7e8a1b3c5d\"",
            token.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_case_insensitive_and_whitespace_tolerant() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER\tabc"), Some("abc"));
        assert_eq!(bearer("  bearer   abc  "), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer   "), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(bearer("Token abc"), None);
    }

    #[test]
    fn comparison_needs_equal_length_and_bytes() {
        assert!(same_secret(b"abcdef", b"abcdef"));
        assert!(!same_secret(b"abcdef", b"abcdeg"));
        assert!(!same_secret(b"abcdef", b"abcde"));
        assert!(!same_secret(b"abcdef", b"abcdefg"));
        assert!(!same_secret(b"abc", b""));
    }

    #[test]
    fn any_of_several_tokens_passes_and_debug_redacts() {
        let t = Tokens::new(["aaaaaaaaaaaaaaaa", " ", "bbbbbbbbbbbbbbbb"]);
        assert_eq!(format!("{t:?}"), "Tokens(2 redacted)");
        assert!(t.check(Some("Bearer bbbbbbbbbbbbbbbb")).is_ok());
        assert_eq!(t.check(Some("Bearer cccccccccccccccc")), Err(AuthError::Wrong));
        let u = Tokens::none().union(&Tokens::new(["x"]));
        assert!(u.check(Some("bearer x")).is_ok());
    }

    #[test]
    fn off_loopback_rule() {
        let some = Tokens::new(["0123456789abcdef"]);
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert!(require_off_loopback(any, &some, "x", "k", "E").is_ok());
        assert!(require_off_loopback(v6, &Tokens::none(), "x", "k", "E").is_ok());
        assert!(require_off_loopback("[::]:1".parse().unwrap(), &Tokens::none(), "x", "k", "E").is_err());
        assert_eq!(validate_token("k", "0123456789abcdef"), None);
        assert_eq!(
            validate_token("alerts.token", "short").unwrap(),
            "alerts.token: a token of 5 bytes; expected at least 16 printable ASCII characters without spaces, \
             e.g. \"4f9c2d7e8a1b3c5d\""
        );
    }
}
