//! Who may publish: per-source API tokens, kept only as SHA-256 digests.
//!
//! The tokens file is a JSON object from source to the lowercase or uppercase hex SHA-256
//! of that source's token, or to a list of them (two during a rotation):
//!
//! ```json
//! { "crm-east": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
//!   "worklog-app": ["<digest of the current token>", "<digest of the next one>"] }
//! ```
//!
//! A request presents its token as `Authorization: Bearer <token>`; the token's digest is
//! looked up, so the file never holds a usable secret. A token names exactly one source.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::config::IngestConfig;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The SHA-256 of a token, as the 64 lowercase hex digits the tokens file holds.
pub fn hash_token(token: &str) -> String {
    hex(&digest(token.as_bytes()))
}

pub(crate) fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn parse_digest(text: &str) -> Option<Digest> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0_u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// Why the tokens could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("reading the tokens file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tokens file {}: {detail}", path.display())]
    Invalid { path: PathBuf, detail: String },
    #[error("tokens: {0}")]
    Unusable(String),
    #[error(
        "no tokens file: set AQS_INGEST_TOKENS_FILE (--tokens-file), or pass --insecure-no-auth \
         to accept events from anyone"
    )]
    NotConfigured,
}

/// The accepted tokens, by digest, each with the source it speaks for.
#[derive(Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<Digest, Arc<str>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("sources", &self.sources())
            .field("tokens", &self.by_digest.len())
            .finish()
    }
}

impl Tokens {
    /// Reads a tokens file (see the module documentation for its form).
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|detail| TokensError::Invalid {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses the text of a tokens file.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let object = value
            .as_object()
            .ok_or("must be a JSON object from source to token digest(s)")?;
        let mut tokens = Tokens::default();
        for (source, digests) in object {
            let list: Vec<&serde_json::Value> = match digests {
                serde_json::Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            if list.is_empty() {
                return Err(format!("source {source:?} has no token digest"));
            }
            for item in list {
                let digest = item.as_str().and_then(parse_digest).ok_or_else(|| {
                    format!(
                        "source {source:?}: each token must be given as the 64 hex digits of its SHA-256"
                    )
                })?;
                tokens.insert(source, digest)?;
            }
        }
        if tokens.by_digest.is_empty() {
            return Err("names no source".to_owned());
        }
        Ok(tokens)
    }

    /// Tokens from `(source, plain token)` pairs, hashed here (for tests and tools).
    pub fn from_plain<S: AsRef<str>, T: AsRef<str>>(
        pairs: impl IntoIterator<Item = (S, T)>,
    ) -> Result<Self, TokensError> {
        let mut tokens = Tokens::default();
        for (source, token) in pairs {
            tokens
                .insert(source.as_ref(), digest(token.as_ref().as_bytes()))
                .map_err(TokensError::Unusable)?;
        }
        Ok(tokens)
    }

    fn insert(&mut self, source: &str, digest: Digest) -> Result<(), String> {
        if !valid_source(source) {
            return Err(format!(
                "source {source:?} is not a valid source id (1 to 64 characters, no control \
                 characters, no surrounding spaces)"
            ));
        }
        match self.by_digest.get(&digest) {
            Some(other) if &**other != source => Err(format!(
                "one token is given for two sources, {other:?} and {source:?}"
            )),
            _ => {
                self.by_digest.insert(digest, Arc::from(source));
                Ok(())
            }
        }
    }

    /// The sources that have a token.
    pub fn sources(&self) -> BTreeSet<&str> {
        self.by_digest.values().map(|s| &**s).collect()
    }

    /// The source a token speaks for, if it is one of ours.
    pub fn source_of(&self, token: &str) -> Option<&Arc<str>> {
        if token.is_empty() {
            return None;
        }
        self.by_digest.get(&digest(token.as_bytes()))
    }
}

fn valid_source(source: &str) -> bool {
    !source.is_empty()
        && source.chars().count() <= aqs_schemas::event::MAX_ID_LEN
        && !source.chars().any(char::is_control)
        && source.trim() == source
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Each request names its source with a token; events must carry that source.
    Tokens(Tokens),
    /// Anyone may publish anything (`--insecure-no-auth`).
    Disabled,
}

impl Auth {
    /// The authentication the configuration asks for; refuses to run open by accident.
    pub fn from_config(config: &IngestConfig) -> Result<Self, TokensError> {
        match (&config.tokens_file, config.insecure_no_auth) {
            (Some(path), _) => Tokens::load(path).map(Auth::Tokens),
            (None, true) => Ok(Auth::Disabled),
            (None, false) => Err(TokensError::NotConfigured),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(crate) fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_like_sha256sum() {
        // printf '%s' test | sha256sum
        assert_eq!(
            hash_token("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn reads_single_digests_and_lists() {
        let tokens = Tokens::from_json(&format!(
            r#"{{"crm": "{}", "app": ["{}", "{}"]}}"#,
            hash_token("a").to_uppercase(),
            hash_token("b"),
            hash_token("c")
        ))
        .expect("valid");
        assert_eq!(tokens.source_of("a").map(|s| &**s), Some("crm"));
        assert_eq!(tokens.source_of("b").map(|s| &**s), Some("app"));
        assert_eq!(tokens.source_of("c").map(|s| &**s), Some("app"));
        assert_eq!(tokens.source_of("d"), None);
        assert_eq!(tokens.source_of(""), None);
        assert!(!format!("{tokens:?}").contains(&hash_token("a")));
    }

    #[test]
    fn refuses_unusable_files() {
        for text in [
            "[]",
            "{}",
            r#"{"crm": "abc"}"#,
            r#"{"crm": []}"#,
            r#"{" crm": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
            r#"{"a": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "b": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
        ] {
            assert!(Tokens::from_json(text).is_err(), "{text}");
        }
    }

    #[test]
    fn reads_bearer_headers() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn running_open_must_be_asked_for() {
        assert!(matches!(
            Auth::from_config(&IngestConfig::default()),
            Err(TokensError::NotConfigured)
        ));
        let open = IngestConfig {
            insecure_no_auth: true,
            ..IngestConfig::default()
        };
        assert!(matches!(Auth::from_config(&open), Ok(Auth::Disabled)));
    }
}
