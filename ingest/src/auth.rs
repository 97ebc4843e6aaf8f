//! Who may publish what: per-source API tokens, kept only as SHA-256 digests, and the
//! classes of events each source is granted.
//!
//! The tokens file is a JSON object from source to its tokens and grants:
//!
//! ```json
//! { "worklog-app": {"tokens": ["<digest of the current token>", "<digest of the next one>"],
//!                   "grants": ["activity", "plans"]},
//!   "hr-system":   {"tokens": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
//!                   "grants": ["reference", "roster"]},
//!   "crm-east":    "<digest>" }
//! ```
//!
//! `tokens` is the lowercase or uppercase hex SHA-256 of a token, or a list of them (two
//! during a rotation). `grants` lists event classes (`aqs_schemas::EventClass`: reference,
//! roster, targets, plans, activity), or is `"all"`; retractions need no grant, since a
//! source only ever retracts its own events. The earlier forms, a digest or a list of digests
//! alone (`"crm-east"` above), still load and grant every class: a deployment with one
//! source keeps working unchanged, and a warning at start names the sources granted
//! everything that way.
//!
//! A request presents its token as `Authorization: Bearer <token>`; the token's digest is
//! looked up, so the file never holds a usable secret. A token names exactly one source.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aqs_schemas::EventClass;
use serde_json::Value;
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

/// The classes of events a source may publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    classes: BTreeSet<EventClass>,
    /// Granted everything only because the tokens file gave no `grants` (its earlier form).
    implicit: bool,
}

impl Grants {
    /// Every class, said so.
    pub fn all() -> Self {
        Self {
            classes: EventClass::ALL.into_iter().collect(),
            implicit: false,
        }
    }

    /// Exactly these classes (and retractions, which need no grant).
    pub fn only(classes: impl IntoIterator<Item = EventClass>) -> Self {
        Self {
            classes: classes.into_iter().collect(),
            implicit: false,
        }
    }

    /// Every class, because the tokens file names none (a digest or a list of digests).
    fn implicit_all() -> Self {
        Self {
            implicit: true,
            ..Self::all()
        }
    }

    /// Whether the source may publish events of `class`.
    pub fn allows(&self, class: EventClass) -> bool {
        !class.needs_grant() || self.classes.contains(&class)
    }

    /// Whether everything was granted only because no grants were written.
    pub fn implicit(&self) -> bool {
        self.implicit
    }

    /// The granted classes that need a grant, for messages: e.g. `activity, plans`.
    pub fn describe(&self) -> String {
        let granted: Vec<&str> = self
            .classes
            .iter()
            .filter(|class| class.needs_grant())
            .map(|class| class.as_str())
            .collect();
        if granted.is_empty() {
            "none (retractions only)".to_owned()
        } else {
            granted.join(", ")
        }
    }

    /// Reads `grants`: `"all"` or a list of class names.
    fn from_json(value: &Value) -> Result<Self, String> {
        if value.as_str() == Some("all") {
            return Ok(Self::all());
        }
        let names = value.as_array().ok_or_else(|| {
            format!(
                "grants must be \"all\" or a list of event classes ({})",
                class_names()
            )
        })?;
        names
            .iter()
            .map(|name| {
                name.as_str()
                    .and_then(EventClass::from_name)
                    .ok_or_else(|| {
                        format!(
                            "unknown event class {name} in grants: use {}",
                            class_names()
                        )
                    })
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self::only)
    }
}

fn class_names() -> String {
    EventClass::ALL
        .iter()
        .filter(|class| class.needs_grant())
        .map(|class| class.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one token gives: the source it speaks for and what that source may publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAccess {
    pub source: String,
    pub grants: Grants,
}

/// The accepted tokens, by digest, each with the source it speaks for and its grants.
#[derive(Clone, Default)]
pub struct Tokens {
    by_digest: HashMap<Digest, Arc<SourceAccess>>,
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
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let object = value
            .as_object()
            .ok_or("must be a JSON object from source to its tokens and grants")?;
        let mut tokens = Tokens::default();
        for (source, entry) in object {
            let (digests, grants) = match entry {
                Value::Object(fields) => {
                    if let Some(unknown) = fields.keys().find(|k| *k != "tokens" && *k != "grants")
                    {
                        return Err(format!(
                            "source {source:?}: unknown key {unknown:?} (use \"tokens\" and \"grants\")"
                        ));
                    }
                    let digests = fields
                        .get("tokens")
                        .ok_or_else(|| format!("source {source:?} has no \"tokens\""))?;
                    let grants = fields.get("grants").ok_or_else(|| {
                        format!(
                            "source {source:?} has no \"grants\": list its event classes ({}) or write \"all\"",
                            class_names()
                        )
                    })?;
                    let grants =
                        Grants::from_json(grants).map_err(|e| format!("source {source:?}: {e}"))?;
                    (digests, grants)
                }
                // The earlier forms: a digest, or a list of them, granting everything.
                digests => (digests, Grants::implicit_all()),
            };
            let list: Vec<&Value> = match digests {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            if list.is_empty() {
                return Err(format!("source {source:?} has no token digest"));
            }
            let access = Arc::new(SourceAccess {
                source: source.clone(),
                grants,
            });
            for item in list {
                let digest = item.as_str().and_then(parse_digest).ok_or_else(|| {
                    format!(
                        "source {source:?}: each token must be given as the 64 hex digits of its SHA-256"
                    )
                })?;
                tokens.insert(Arc::clone(&access), digest)?;
            }
        }
        if tokens.by_digest.is_empty() {
            return Err("names no source".to_owned());
        }
        Ok(tokens)
    }

    /// Tokens from `(source, plain token)` pairs, hashed here, each granted every class (for
    /// tests and tools).
    pub fn from_plain<S: AsRef<str>, T: AsRef<str>>(
        pairs: impl IntoIterator<Item = (S, T)>,
    ) -> Result<Self, TokensError> {
        Self::from_plain_with_grants(
            pairs
                .into_iter()
                .map(|(source, token)| (source, token, Grants::all())),
        )
    }

    /// Tokens from `(source, plain token, grants)`, hashed here (for tests and tools).
    pub fn from_plain_with_grants<S: AsRef<str>, T: AsRef<str>>(
        entries: impl IntoIterator<Item = (S, T, Grants)>,
    ) -> Result<Self, TokensError> {
        let mut tokens = Tokens::default();
        for (source, token, grants) in entries {
            let access = Arc::new(SourceAccess {
                source: source.as_ref().to_owned(),
                grants,
            });
            tokens
                .insert(access, digest(token.as_ref().as_bytes()))
                .map_err(TokensError::Unusable)?;
        }
        Ok(tokens)
    }

    fn insert(&mut self, access: Arc<SourceAccess>, digest: Digest) -> Result<(), String> {
        let source = access.source.as_str();
        if !aqs_schemas::event::is_valid_id(source) {
            return Err(format!(
                "source {source:?} is not a valid source id (1 to 64 characters, no control \
                 characters, no surrounding spaces)"
            ));
        }
        match self.by_digest.get(&digest) {
            Some(other) if other.source != source => Err(format!(
                "one token is given for two sources, {:?} and {source:?}",
                other.source
            )),
            _ => {
                self.by_digest.insert(digest, access);
                Ok(())
            }
        }
    }

    /// The sources that have a token.
    pub fn sources(&self) -> BTreeSet<&str> {
        self.by_digest.values().map(|a| a.source.as_str()).collect()
    }

    /// The sources granted every class only because the file names no grants for them.
    pub fn implicitly_granted(&self) -> BTreeSet<&str> {
        self.by_digest
            .values()
            .filter(|a| a.grants.implicit())
            .map(|a| a.source.as_str())
            .collect()
    }

    /// The source a token speaks for, with its grants, if it is one of ours.
    pub fn source_of(&self, token: &str) -> Option<&Arc<SourceAccess>> {
        if token.is_empty() {
            return None;
        }
        self.by_digest.get(&digest(token.as_bytes()))
    }
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
            (Some(path), _) => {
                let tokens = Tokens::load(path)?;
                let implicit = tokens.implicitly_granted();
                if !implicit.is_empty() {
                    tracing::warn!(
                        sources = ?implicit,
                        tokens_file = %path.display(),
                        "these sources may publish every event class because the tokens file \
                         gives them no grants; write {{\"tokens\": ..., \"grants\": [...]}} to limit them"
                    );
                }
                Ok(Auth::Tokens(tokens))
            }
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
        let source = |token: &str| tokens.source_of(token).map(|a| a.source.as_str());
        assert_eq!(source("a"), Some("crm"));
        assert_eq!(source("b"), Some("app"));
        assert_eq!(source("c"), Some("app"));
        assert_eq!(tokens.implicitly_granted(), BTreeSet::from(["app", "crm"]));
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
            r#"{"crm": {"tokens": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}"#,
            r#"{"crm": {"tokens": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "grants": ["sales"]}}"#,
            r#"{"crm": {"tokens": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "grants": "activity"}}"#,
            r#"{"crm": {"tokens": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "grants": [], "grant": []}}"#,
            r#"{"crm": {"grants": "all"}}"#,
            r#"{"a\u0085": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#,
        ] {
            assert!(Tokens::from_json(text).is_err(), "{text}");
        }
    }

    #[test]
    fn grants_are_read_per_source() {
        let tokens = Tokens::from_json(&format!(
            r#"{{"app": {{"tokens": ["{}", "{}"], "grants": ["activity", "plans"]}},
                 "hr": {{"tokens": "{}", "grants": ["reference", "roster"]}},
                 "ops": {{"tokens": "{}", "grants": "all"}},
                 "fixer": {{"tokens": "{}", "grants": []}},
                 "legacy": "{}"}}"#,
            hash_token("a1"),
            hash_token("a2"),
            hash_token("h"),
            hash_token("o"),
            hash_token("f"),
            hash_token("l"),
        ))
        .expect("valid");
        let grants = |token: &str| tokens.source_of(token).expect("known").grants.clone();
        assert!(grants("a2").allows(EventClass::Activity));
        assert!(grants("a1").allows(EventClass::Plans));
        assert!(!grants("a1").allows(EventClass::Reference));
        assert!(!grants("a1").allows(EventClass::Targets));
        assert!(grants("h").allows(EventClass::Roster));
        assert!(!grants("h").allows(EventClass::Activity));
        for class in EventClass::ALL {
            assert!(grants("o").allows(class));
            assert!(grants("l").allows(class));
            assert_eq!(grants("f").allows(class), !class.needs_grant());
        }
        assert_eq!(grants("f").describe(), "none (retractions only)");
        assert_eq!(grants("a1").describe(), "plans, activity");
        assert_eq!(tokens.implicitly_granted(), BTreeSet::from(["legacy"]));
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
