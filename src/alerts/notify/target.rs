//! Where the notifier may send: URL checks for webhook and Slack channels, the
//! `alerts.allowed-hosts` policy, and redaction of the secrets URLs carry.
//!
//! Anyone who may write a rule chooses a URL the cluster will POST to, so a URL is checked
//! twice: when the rule is written ([`TargetPolicy::check_url`]: scheme, no control
//! characters, a host, and no loopback, private, link-local or internal-only host unless
//! listed) and before each delivery ([`TargetPolicy::check_resolved`]: the addresses the name
//! resolves to now). Redirects are not followed. A name that resolves differently between
//! that check and the connection (DNS rebinding with a zero TTL) is not caught; list the
//! hosts in `alerts.allowed-hosts` to close that gap too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// The parts of an `http(s)://` URL that the checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// `user:password` before `@`, if any.
    pub userinfo: Option<&'a str>,
    /// The host, lowercase-insensitive as written (IPv6 without brackets).
    pub host: &'a str,
    /// The port, if written.
    pub port: Option<u16>,
    /// Path, query and fragment (`/a/b?c#d`), possibly empty.
    pub rest: &'a str,
}

impl Target<'_> {
    /// The port the request goes to.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(if self.scheme == "https" { 443 } else { 80 })
    }
}

/// Splits `url`; the error says what is wrong (without the `field:` prefix).
pub fn parse(url: &str) -> Result<Target<'_>, String> {
    if let Some((i, c)) = url.char_indices().find(|&(_, c)| c.is_control() || c == ' ') {
        let name = match c {
            '\r' => "CR".to_string(),
            '\n' => "LF".to_string(),
            '\t' => "TAB".to_string(),
            ' ' => "a space".to_string(),
            c => format!("control character U+{:04X}", c as u32),
        };
        return Err(format!("has {name} at byte {i}; a URL has no whitespace or control characters"));
    }
    let (scheme, after) = url.split_once("://").ok_or("is not an http:// or https:// URL")?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("has scheme {scheme:?}; only \"http\" and \"https\" are allowed"));
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, tail) = v6.split_once(']').ok_or("has an unclosed [ in its host")?;
        if h.parse::<Ipv6Addr>().is_err() {
            return Err(format!("has {h:?} in brackets, which is not an IPv6 address"));
        }
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("has text after the IPv6 host that is not :port")?),
        };
        (h, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if !hostport.starts_with('[') && !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return Err(format!("has host {host:?}; a host name is letters, digits, '.' and '-'"));
    }
    let port = match port {
        None => None,
        Some(p) => {
            Some(p.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| format!("has port {p:?}, not 1-65535"))?)
        }
    };
    Ok(Target { scheme, userinfo, host, port, rest })
}

/// Why an address is not a public one, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg[0] == 0x64 && seg[1] == 0xff9b {
                // NAT64: the embedded IPv4 address decides.
                non_public_v4(Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8))
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space (carrier-grade NAT)")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("broadcast, multicast or reserved")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("benchmarking")
    } else {
        None
    }
}

/// Why a host name is internal-only by its form, or `None`.
fn internal_name(host: &str) -> Option<&'static str> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") || h == "localhost.localdomain" {
        Some("loopback")
    } else if !h.contains('.') {
        Some("a single-label (intranet) name")
    } else if h.ends_with(".internal") || h.ends_with(".local") || h.ends_with(".lan") || h.ends_with(".home.arpa") {
        Some("an internal-only domain")
    } else {
        None
    }
}

/// `alerts.allowed-hosts`: empty = any public host; otherwise only the listed ones (which
/// may be private). Entries are host names or IP addresses, `*.example.com` for subdomains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<String>,
}

impl TargetPolicy {
    /// A policy allowing exactly `hosts` (any public host when empty).
    pub fn new<S: AsRef<str>>(hosts: impl IntoIterator<Item = S>) -> TargetPolicy {
        let allowed = hosts
            .into_iter()
            .map(|h| h.as_ref().trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        TargetPolicy { allowed }
    }

    fn listed(&self, host: &str) -> bool {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        self.allowed.iter().any(|a| match a.strip_prefix("*.") {
            Some(suffix) => h.len() > suffix.len() && h.ends_with(suffix) && h[..h.len() - suffix.len()].ends_with('.'),
            None => *a == h,
        })
    }

    /// Checks a channel URL when a rule is written: its form, and its host against the
    /// policy as far as it can be judged without DNS. `field` prefixes the message.
    ///
    /// ```
    /// use tickflow::alerts::notify::target::TargetPolicy;
    /// let open = TargetPolicy::default();
    /// assert!(open.check_url("channel.url", "https://hooks.example.com/x").is_ok());
    /// assert_eq!(
    ///     open.check_url("channel.url", "http://127.0.0.1:9000/hook").unwrap_err(),
    ///     "channel.url: host \"127.0.0.1\" is loopback; such targets are refused unless listed in \
    ///      alerts.allowed-hosts, e.g. allowed-hosts = [\"127.0.0.1\"]"
    /// );
    /// assert!(TargetPolicy::new(["127.0.0.1"]).check_url("channel.url", "http://127.0.0.1:9000/hook").is_ok());
    /// ```
    pub fn check_url(&self, field: &str, url: &str) -> Result<(), String> {
        let t = parse(url).map_err(|e| {
            format!("{field}: {} {e}; expected e.g. \"https://hooks.slack.com/services/T000/B000/XXXX\"", shown(url))
        })?;
        self.check_host(field, t.host)
    }

    fn check_host(&self, field: &str, host: &str) -> Result<(), String> {
        if self.listed(host) {
            return Ok(());
        }
        if !self.allowed.is_empty() {
            return Err(format!(
                "{field}: host {host:?} is not in alerts.allowed-hosts ({}); add it there to allow it",
                self.allowed.join(", ")
            ));
        }
        let why = match host.parse::<IpAddr>() {
            Ok(ip) => non_public(ip),
            Err(_) => internal_name(host),
        };
        match why {
            None => Ok(()),
            Some(why) => Err(format!(
                "{field}: host {host:?} is {why}; such targets are refused unless listed in alerts.allowed-hosts, \
                 e.g. allowed-hosts = [\"{host}\"]"
            )),
        }
    }

    /// Before a delivery: the URL's host resolved now; refused when a resolved address is
    /// not public and the host is not listed. Blocking (DNS).
    pub fn check_resolved(&self, url: &str) -> Result<(), String> {
        let t = parse(url).map_err(|e| format!("channel URL {e}"))?;
        self.check_host("channel URL", t.host)?;
        if self.listed(t.host) {
            return Ok(());
        }
        let addrs = (t.host, t.effective_port())
            .to_socket_addrs()
            .map_err(|e| format!("channel URL host {:?} does not resolve: {e}", t.host))?;
        for a in addrs {
            if let Some(why) = non_public(a.ip()) {
                return Err(format!(
                    "channel URL host {:?} resolves to {} ({why}); refused unless listed in alerts.allowed-hosts",
                    t.host,
                    a.ip()
                ));
            }
        }
        Ok(())
    }
}

/// `url` quoted for a message, with its secrets redacted.
fn shown(url: &str) -> String {
    format!("{:?}", redact_url(url, false))
}

/// `url` without its secrets: user info, query and fragment become `***`; so does every
/// path segment for Slack (`slack`, the whole path is the secret) and, elsewhere, Telegram
/// bot tokens (`/bot<id>:<secret>/`) and long opaque segments (20+ characters, likely keys).
///
/// ```
/// use tickflow::alerts::notify::target::redact_url;
/// assert_eq!(redact_url("https://hooks.slack.com/services/T000/B000/XXXX", true), "https://hooks.slack.com/***");
/// assert_eq!(redact_url("https://u:p@example.com/hook?key=1#x", false), "https://***@example.com/hook?***#***");
/// assert_eq!(
///     redact_url("https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage", false),
///     "https://api.telegram.org/bot***/sendMessage"
/// );
/// ```
pub fn redact_url(url: &str, slack: bool) -> String {
    let Ok(t) = parse(url) else {
        // Not a URL we would send to: show only its length.
        return format!("<{} bytes, not a valid URL>", url.len());
    };
    let mut out = format!("{}://", t.scheme);
    if t.userinfo.is_some() {
        out.push_str("***@");
    }
    if t.host.contains(':') {
        out.push('[');
        out.push_str(t.host);
        out.push(']');
    } else {
        out.push_str(t.host);
    }
    if let Some(p) = t.port {
        out.push(':');
        out.push_str(&p.to_string());
    }
    let (path, tail) = match t.rest.find(['?', '#']) {
        Some(i) => t.rest.split_at(i),
        None => (t.rest, ""),
    };
    if slack {
        if !path.trim_matches('/').is_empty() {
            out.push_str("/***");
        }
    } else {
        let segments: Vec<String> = path
            .split('/')
            .map(|seg| {
                let bot = seg.strip_prefix("bot").is_some_and(|r| r.contains(':'));
                if bot {
                    "bot***".to_string()
                } else if seg.len() >= 20 {
                    "***".to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect();
        out.push_str(&segments.join("/"));
    }
    if tail.contains('?') {
        out.push_str("?***");
    }
    if tail.contains('#') {
        out.push_str("#***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_control_characters_or_other_schemes_are_refused() {
        let p = TargetPolicy::default();
        assert_eq!(
            p.check_url("channel.url", "http://example.com/a\r\nX-Injected: 1").unwrap_err(),
            "channel.url: \"<35 bytes, not a valid URL>\" has CR at byte 20; a URL has no whitespace or control \
             characters; expected e.g. \"https://hooks.slack.com/services/T000/B000/XXXX\""
        );
        assert!(p.check_url("channel.url", "ftp://example.com/").unwrap_err().contains("has scheme \"ftp\""));
        assert!(p.check_url("channel.url", "http:///path").unwrap_err().contains("has no host"));
        assert!(p.check_url("channel.url", "http://exa mple.com").unwrap_err().contains("a space"));
        assert!(p.check_url("channel.url", "http://example.com:99999/").unwrap_err().contains("port \"99999\""));
        assert!(p.check_url("channel.url", "http://ex_ample.com/").unwrap_err().contains("letters, digits"));
    }

    #[test]
    fn internal_targets_need_listing() {
        let p = TargetPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://172.16.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://localhost:9000/",
            "http://questdb:9000/",
            "http://metadata.google.internal/",
        ] {
            assert!(p.check_url("channel.url", url).is_err(), "{url} should be refused");
        }
        assert!(p.check_url("channel.url", "https://8.8.8.8/").is_ok());
        let listed = TargetPolicy::new(["localhost", "*.corp.example", "[::1]"]);
        assert!(listed.check_url("c", "http://localhost:9000/").is_ok());
        assert!(listed.check_url("c", "http://a.corp.example/").is_ok());
        assert!(listed.check_url("c", "http://[::1]/").is_ok());
        assert!(listed.check_url("c", "http://corp.example/").is_err());
        assert_eq!(
            listed.check_url("c", "https://hooks.slack.com/x").unwrap_err(),
            "c: host \"hooks.slack.com\" is not in alerts.allowed-hosts (localhost, *.corp.example, ::1); add it there to allow it"
        );
    }

    #[test]
    fn resolved_addresses_are_checked_before_delivery() {
        let p = TargetPolicy::default();
        // An IP literal needs no DNS; a listed host is not resolved at all.
        assert!(p.check_resolved("http://127.0.0.1:1/").unwrap_err().contains("is loopback"));
        assert!(TargetPolicy::new(["127.0.0.1"]).check_resolved("http://127.0.0.1:1/").is_ok());
    }

    #[test]
    fn redaction_keeps_scheme_host_port_and_plain_paths() {
        assert_eq!(redact_url("http://example.com:8080/hooks/alerts", false), "http://example.com:8080/hooks/alerts");
        assert_eq!(redact_url("http://[::1]:9/a", false), "http://[::1]:9/a");
        assert_eq!(redact_url("https://hooks.slack.com", true), "https://hooks.slack.com");
        assert_eq!(
            redact_url("https://example.com/hook/0123456789abcdef0123456789", false),
            "https://example.com/hook/***"
        );
    }
}
