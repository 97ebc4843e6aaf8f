//! Which `Host` a request may name: the defence against DNS rebinding.
//!
//! A page on a hostile site can make a browser resolve the site's own name to 127.0.0.1 and
//! then read a loopback service as if it were the site (the browser's same-origin rule only
//! sees the name). Such a request always names the hostile site in `Host`; refusing names
//! the server does not answer to closes that door.
//!
//! What passes ([`AllowedHosts::allows`]):
//! - an IP address literal (`127.0.0.1:8080`, `[::1]`, a pod's IP): a browser sends one only
//!   to a page loaded from that very address, so it cannot be a rebinding; probes and
//!   scrapers that reach a pod by its IP need this;
//! - `localhost`, and the names configured, compared without case, port or final dot; an
//!   entry `*.example.com` admits every name under `example.com`; the entry `*` turns the
//!   check off (for a proxy in front that checks `Host` itself);
//! - a request without any host (HTTP/1.0 clients; browsers always send one).
//!
//! [`crate::HostCheckLayer`] applies the check to every request of a router and answers the
//! others `421 Misdirected Request` with a JSON body naming the setting that would admit
//! them; a server of its own can call [`AllowedHosts::allows`] and answer [`misdirected`].

use std::collections::BTreeSet;
use std::net::IpAddr;

/// Longest host shown back in a refusal.
const SHOWN_HOST_CHARS: usize = 100;

/// The JSON body of a refusal: `{"error": "misdirected_request", "message": ...}`, naming
/// `setting`, the variable that lists the allowed names.
pub fn misdirected(host: &str, setting: &str) -> String {
    let shown: String = host.chars().take(SHOWN_HOST_CHARS).collect();
    serde_json::json!({
        "error": "misdirected_request",
        "message": format!(
            "this server does not answer to the host {shown:?}; if that name is yours, add it \
             to {setting}"
        ),
    })
    .to_string()
}

/// Why a list of allowed hosts cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    #[error(
        "allowed host {0:?} is not a host name: give names such as `ingest.example.com` or \
         `*.example.com`, without scheme, port or path"
    )]
    NotAName(String),
}

/// The names a server answers to, besides IP literals and `localhost`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowedHosts {
    names: BTreeSet<String>,
    /// `.example.com` for an entry `*.example.com`.
    suffixes: BTreeSet<String>,
    any: bool,
}

impl AllowedHosts {
    /// `localhost` and the given names (see the module documentation for their forms).
    pub fn new<I, S>(names: I) -> Result<Self, HostsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = Self::default();
        allowed.names.insert("localhost".to_owned());
        for entry in names {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                allowed.any = true;
                continue;
            }
            let (wildcard, name) = match entry.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, entry),
            };
            let name = normalise(name).ok_or_else(|| HostsError::NotAName(entry.to_owned()))?;
            if wildcard {
                allowed.suffixes.insert(format!(".{name}"));
            } else {
                allowed.names.insert(name);
            }
        }
        Ok(allowed)
    }

    /// Whether a request naming `host` (the `Host` header or the URI's authority; `None`
    /// when it names none) may be served.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        if self.any {
            return true;
        }
        let Some(name) = host_part(host) else {
            return false;
        };
        if let Some(literal) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            return literal.parse::<std::net::Ipv6Addr>().is_ok();
        }
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let Some(name) = normalise(name) else {
            return false;
        };
        self.names.contains(&name) || self.suffixes.iter().any(|suffix| name.ends_with(suffix))
    }
}

/// The host of `host[:port]`, brackets of an IPv6 literal kept; `None` when malformed.
fn host_part(value: &str) -> Option<&str> {
    if value.starts_with('[') {
        let end = value.find(']')?;
        let rest = &value[end + 1..];
        let port_ok = rest.is_empty()
            || rest
                .strip_prefix(':')
                .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()));
        return port_ok.then(|| &value[..=end]);
    }
    match value.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => Some(name),
        Some(_) => None,
        None => Some(value),
    }
}

/// Lowercase, without a final dot; `None` unless it is a DNS name (letters, digits,
/// hyphens, underscores, dots).
fn normalise(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(names: &[&str]) -> AllowedHosts {
        AllowedHosts::new(names).expect("valid names")
    }

    #[test]
    fn ip_literals_localhost_and_configured_names_pass() {
        let hosts = allowed(&["ingest.example.com", "*.corp.example"]);
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.42.0.17:8080",
            "[::1]",
            "[::1]:8088",
            "localhost",
            "LOCALHOST:8088",
            "localhost.",
            "ingest.example.com",
            "Ingest.Example.Com:443",
            "a.corp.example",
            "b.a.corp.example:8080",
        ] {
            assert!(hosts.allows(Some(host)), "{host}");
        }
        assert!(hosts.allows(None));
    }

    #[test]
    fn other_names_and_malformed_hosts_are_refused() {
        let hosts = allowed(&["ingest.example.com", "*.corp.example"]);
        for host in [
            "evil.example",
            "evil.example:8088",
            "localhost.evil.example",
            "ingest.example.com.evil.example",
            "corp.example",
            "xcorp.example",
            "",
            "[::1",
            "[nonsense]",
            "127.0.0.1:80x",
            "user@localhost",
            "localhost/x",
        ] {
            assert!(!hosts.allows(Some(host)), "{host}");
        }
    }

    #[test]
    fn a_star_turns_the_check_off_and_bad_entries_are_refused() {
        assert!(allowed(&["*"]).allows(Some("anything.example")));
        assert_eq!(
            AllowedHosts::new(["https://ingest.example.com"]),
            Err(HostsError::NotAName(
                "https://ingest.example.com".to_owned()
            ))
        );
        assert!(AllowedHosts::new(["ingest.example.com:8080"]).is_err());
        assert!(AllowedHosts::new(["", "  "]).is_ok());
    }
}
