//! Revoked sessions: a JSON Lines file every replica reads (and re-reads when it changes).
//!
//! - `{"session": "<id>", "until": <unix seconds>}`: one session, written at sign-out, kept
//!   until the session would have expired anyway;
//! - `{"user": "<name>", "before": <unix seconds>}`: every session of a user issued before
//!   that time (`aqs user revoke NAME`).
//!
//! Lines are only appended. Several replicas see each other's revocations when the file is
//! on a volume they share; on one machine it lives in the data folder.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Session { session: String, until: i64 },
    User { user: String, before: i64 },
}

#[derive(Debug, Default, Clone)]
struct Revoked {
    sessions: HashMap<String, i64>,
    users: HashMap<String, i64>,
}

/// Why a revocation could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("recording a revocation in {path}: {source}")]
pub struct RevocationError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The revocation list.
#[derive(Debug)]
pub struct Revocations {
    path: PathBuf,
    cached: Mutex<(Option<SystemTime>, Revoked)>,
}

impl Revocations {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cached: Mutex::new((None, Revoked::default())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&self, line: &Line) -> Result<(), RevocationError> {
        let error = |source| RevocationError {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(error)?;
        }
        let mut text = serde_json::to_string(line).map_err(|e| error(std::io::Error::other(e)))?;
        text.push('\n');
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(error)?;
        // One write of one line: appends of concurrent writers do not interleave.
        file.write_all(text.as_bytes()).map_err(error)?;
        file.sync_data().map_err(error)?;
        let mut cached = self.lock();
        match line {
            Line::Session { session, until } => {
                cached.1.sessions.insert(session.clone(), *until);
            }
            Line::User { user, before } => {
                let entry = cached.1.users.entry(user.clone()).or_insert(*before);
                *entry = (*entry).max(*before);
            }
        }
        Ok(())
    }

    /// Revokes one session (sign-out) until `until`, when it would have expired anyway.
    pub fn revoke_session(&self, id: &str, until: i64) -> Result<(), RevocationError> {
        self.append(&Line::Session {
            session: id.to_owned(),
            until,
        })
    }

    /// Revokes every session of `user` issued before `before`.
    pub fn revoke_user(&self, user: &str, before: i64) -> Result<(), RevocationError> {
        self.append(&Line::User {
            user: user.to_owned(),
            before,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<SystemTime>, Revoked)> {
        match self.cached.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether the session `id` of `user`, issued at `issued_at`, is revoked at `now`.
    pub fn is_revoked(&self, id: &str, user: &str, issued_at: i64, now: i64) -> bool {
        let modified = fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        let mut cached = self.lock();
        if cached.0 != modified {
            match fs::read_to_string(&self.path) {
                Ok(text) => {
                    let mut revoked = Revoked::default();
                    for (number, line) in text.lines().enumerate() {
                        match serde_json::from_str::<Line>(line) {
                            Ok(Line::Session { session, until }) if until > now => {
                                revoked.sessions.insert(session, until);
                            }
                            Ok(Line::Session { .. }) => {}
                            Ok(Line::User { user, before }) => {
                                let entry = revoked.users.entry(user).or_insert(before);
                                *entry = (*entry).max(before);
                            }
                            Err(error) if !line.trim().is_empty() => tracing::warn!(
                                path = %self.path.display(),
                                line = number + 1,
                                %error,
                                "revocation line skipped"
                            ),
                            Err(_) => {}
                        }
                    }
                    *cached = (modified, revoked);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    *cached = (None, Revoked::default())
                }
                Err(error) => {
                    tracing::error!(path = %self.path.display(), %error, "revocations not reloaded")
                }
            }
        }
        cached.1.sessions.get(id).is_some_and(|until| *until > now)
            || cached
                .1
                .users
                .get(user)
                .is_some_and(|before| issued_at <= *before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_reach_another_reader_of_the_same_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("revoked.jsonl");
        let writer = Revocations::new(&path);
        let reader = Revocations::new(&path);
        assert!(!reader.is_revoked("s1", "li", 100, 150));
        writer.revoke_session("s1", 200).expect("recorded");
        writer.revoke_user("wang", 300).expect("recorded");
        // Another replica: a fresh reader of the same file.
        let other = Revocations::new(&path);
        assert!(other.is_revoked("s1", "li", 100, 150));
        assert!(
            !other.is_revoked("s1", "li", 100, 250),
            "past its expiry it needs no entry"
        );
        assert!(!other.is_revoked("s2", "li", 100, 150));
        assert!(other.is_revoked("s9", "wang", 299, 400));
        assert!(
            !other.is_revoked("s9", "wang", 301, 400),
            "signed in again after the revocation"
        );
        let text = fs::read_to_string(&path).expect("file");
        assert_eq!(text.lines().count(), 2);
    }
}
