//! The local users file of the embedded default: names, Argon2id password hashes (PHC
//! strings, never the password itself), roles and scopes.
//!
//! ```json
//! { "users": [
//!   { "name": "wang.supervisor", "password_hash": "$argon2id$v=19$...", "role": "supervisor",
//!     "scope": "T0003", "agent_names": false, "sessions_valid_after": null } ] }
//! ```
//!
//! The file is re-read when it changes, so `aqs user add|remove|passwd` take effect on a
//! running dashboard at the next request: a removed user's sessions end there.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};

use crate::access::{Access, AccessError};

/// One user of the users file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUser {
    pub name: String,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// `headquarters`, `branch_manager`, `supervisor` or `analyst`.
    pub role: String,
    /// Region (headquarters, optional), branch (branch manager) or team (supervisor) id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Whether an analyst may see agents' names.
    #[serde(default)]
    pub agent_names: bool,
}

impl LocalUser {
    pub fn access(&self) -> Result<Access, AccessError> {
        Access::parse(&self.role, self.scope.as_deref(), self.agent_names)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersDocument {
    users: Vec<LocalUser>,
}

/// Why the users file could not be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("reading the users file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the users file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("user {name:?} in {path}: {source}")]
    BadAccess {
        path: PathBuf,
        name: String,
        #[source]
        source: AccessError,
    },
    #[error("writing the users file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("user name {0:?} is not valid: use 1 to 64 letters, digits, '.', '_', '-' or '@'")]
    InvalidName(String),
    #[error("user {0:?} exists already")]
    Exists(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("hashing the password: {0}")]
    Hash(String),
}

/// Shortest password `aqs user add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// Argon2id with the crate's defaults (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A random password of 16 characters from an alphabet without look-alikes (for demo users
/// and for `aqs user add` without a password of one's own): about 90 bits.
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A hash of no one's password, verified when the name is unknown so that a wrong name takes
/// as long as a wrong password (no probing for names by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password of no user").unwrap_or_default())
}

/// The users file, read and written whole.
#[derive(Debug, Clone)]
pub struct UsersFile {
    path: PathBuf,
}

impl UsersFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every user; none when the file does not exist.
    pub fn load(&self) -> Result<Vec<LocalUser>, UsersError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(UsersError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let document: UsersDocument =
            serde_json::from_str(&text).map_err(|e| UsersError::Invalid {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        for user in &document.users {
            if !valid_name(&user.name) {
                return Err(UsersError::Invalid {
                    path: self.path.clone(),
                    message: format!("user name {:?} is not valid", user.name),
                });
            }
            if PasswordHash::new(&user.password_hash).is_err() {
                return Err(UsersError::Invalid {
                    path: self.path.clone(),
                    message: format!("user {:?}: password_hash is not a PHC hash", user.name),
                });
            }
            user.access().map_err(|source| UsersError::BadAccess {
                path: self.path.clone(),
                name: user.name.clone(),
                source,
            })?;
        }
        Ok(document.users)
    }

    /// Writes the whole file: a new file beside it (owner read/write only), synced, then
    /// renamed over the old one, so a reader sees the old or the new list, never half.
    fn save(&self, users: Vec<LocalUser>) -> Result<(), UsersError> {
        let write_error = |source| UsersError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(write_error)?;
        }
        let text = serde_json::to_string_pretty(&UsersDocument { users })
            .map_err(|e| write_error(std::io::Error::other(e)))?;
        let temporary = self.path.with_extension("json.tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(write_error)?;
        file.write_all(text.as_bytes()).map_err(write_error)?;
        file.write_all(b"\n").map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        fs::rename(&temporary, &self.path).map_err(write_error)
    }

    /// Adds a user with `password` (hashed here).
    pub fn add(&self, user: NewUser<'_>) -> Result<LocalUser, UsersError> {
        if !valid_name(user.name) {
            return Err(UsersError::InvalidName(user.name.to_owned()));
        }
        if user.password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(UsersError::WeakPassword);
        }
        Access::parse(user.role, user.scope, user.agent_names).map_err(|source| {
            UsersError::BadAccess {
                path: self.path.clone(),
                name: user.name.to_owned(),
                source,
            }
        })?;
        let mut users = self.load()?;
        if users.iter().any(|u| u.name == user.name) {
            return Err(UsersError::Exists(user.name.to_owned()));
        }
        let added = LocalUser {
            name: user.name.to_owned(),
            password_hash: hash_password(user.password)?,
            role: user.role.trim().to_owned(),
            scope: user
                .scope
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            agent_names: user.agent_names,
        };
        users.push(added.clone());
        self.save(users)?;
        Ok(added)
    }

    /// Removes a user; their sessions end at their next request.
    pub fn remove(&self, name: &str) -> Result<(), UsersError> {
        let mut users = self.load()?;
        let before = users.len();
        users.retain(|u| u.name != name);
        if users.len() == before {
            return Err(UsersError::NoSuchUser(name.to_owned()));
        }
        self.save(users)
    }

    /// Sets a new password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UsersError> {
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(UsersError::WeakPassword);
        }
        let mut users = self.load()?;
        let user = users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?;
        user.password_hash = hash_password(password)?;
        self.save(users)
    }
}

/// What `aqs user add` gives.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub password: &'a str,
    pub role: &'a str,
    pub scope: Option<&'a str>,
    pub agent_names: bool,
}

/// The users file as the server reads it: cached, and read again when it changes.
#[derive(Debug)]
pub struct UserDirectory {
    file: UsersFile,
    cached: Mutex<Option<(Option<SystemTime>, Vec<LocalUser>)>>,
}

impl UserDirectory {
    pub fn new(file: UsersFile) -> Self {
        Self {
            file,
            cached: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The current users. A file that became invalid keeps the last good list (and logs
    /// why), so a bad edit does not lock everyone out or let anyone in.
    pub fn users(&self) -> Vec<LocalUser> {
        let modified = fs::metadata(self.file.path())
            .and_then(|m| m.modified())
            .ok();
        let mut cached = match self.cached.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((seen, users)) = cached.as_ref()
            && *seen == modified
        {
            return users.clone();
        }
        match self.file.load() {
            Ok(users) => {
                *cached = Some((modified, users.clone()));
                users
            }
            Err(error) => {
                tracing::error!(%error, "users file not reloaded; keeping the previous list");
                cached
                    .as_ref()
                    .map(|(_, users)| users.clone())
                    .unwrap_or_default()
            }
        }
    }

    /// The user, when `password` is theirs. Blocking (Argon2 takes tens of milliseconds).
    pub fn verify(&self, name: &str, password: &str) -> Option<LocalUser> {
        let users = self.users();
        match users.into_iter().find(|u| u.name == name) {
            Some(user) => verify_password(password, &user.password_hash).then_some(user),
            None => {
                let _ = verify_password(password, decoy_hash());
                None
            }
        }
    }

    /// The user's current entry (role and scope may have changed since sign-in).
    pub fn get(&self, name: &str) -> Option<LocalUser> {
        self.users().into_iter().find(|u| u.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_user<'a>(name: &'a str, role: &'a str, scope: Option<&'a str>) -> NewUser<'a> {
        NewUser {
            name,
            password: "correct horse battery",
            role,
            scope,
            agent_names: false,
        }
    }

    #[test]
    fn users_are_stored_with_argon2_hashes_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = UsersFile::new(dir.path().join("users.json"));
        file.add(new_user("li.sup", "supervisor", Some("T0003")))
            .expect("added");
        let text = fs::read_to_string(file.path()).expect("written");
        assert!(!text.contains("correct horse battery"), "{text}");
        assert!(text.contains("$argon2id$"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(file.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "users file readable by others: {mode:o}");
        }
        let directory = UserDirectory::new(file.clone());
        let user = directory
            .verify("li.sup", "correct horse battery")
            .expect("signs in");
        assert_eq!(
            user.access().expect("access").home(),
            Some(("team", "T0003"))
        );
        assert!(directory.verify("li.sup", "wrong horse battery").is_none());
        assert!(
            directory
                .verify("nobody", "correct horse battery")
                .is_none()
        );
    }

    #[test]
    fn add_refuses_bad_names_roles_scopes_short_passwords_and_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = UsersFile::new(dir.path().join("users.json"));
        assert!(matches!(
            file.add(new_user("a b", "analyst", None)),
            Err(UsersError::InvalidName(_))
        ));
        assert!(matches!(
            file.add(new_user("x", "supervisor", None)),
            Err(UsersError::BadAccess { .. })
        ));
        assert!(matches!(
            file.add(new_user("x", "root", None)),
            Err(UsersError::BadAccess { .. })
        ));
        let short = NewUser {
            password: "short",
            ..new_user("x", "analyst", None)
        };
        assert!(matches!(file.add(short), Err(UsersError::WeakPassword)));
        file.add(new_user("x", "analyst", None)).expect("added");
        assert!(matches!(
            file.add(new_user("x", "analyst", None)),
            Err(UsersError::Exists(_))
        ));
        assert_eq!(file.load().expect("loads").len(), 1);
    }

    #[test]
    fn removal_and_new_passwords_reach_a_running_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = UsersFile::new(dir.path().join("users.json"));
        file.add(new_user("hq", "headquarters", None))
            .expect("added");
        let directory = UserDirectory::new(file.clone());
        assert!(directory.get("hq").is_some());
        file.set_password("hq", "another long password")
            .expect("changed");
        // mtime granularity: make the change visible even within the same tick.
        let later = SystemTime::now() + std::time::Duration::from_secs(2);
        fs::File::options()
            .write(true)
            .open(file.path())
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert!(directory.verify("hq", "correct horse battery").is_none());
        assert!(directory.verify("hq", "another long password").is_some());
        file.remove("hq").expect("removed");
        fs::File::options()
            .write(true)
            .open(file.path())
            .and_then(|f| f.set_modified(later + std::time::Duration::from_secs(2)))
            .expect("touch");
        assert!(directory.get("hq").is_none());
        assert!(matches!(file.remove("hq"), Err(UsersError::NoSuchUser(_))));
    }

    #[test]
    fn an_invalid_file_is_reported_with_the_user_and_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.json");
        fs::write(
            &path,
            r#"{"users": [{"name": "x", "password_hash": "plain", "role": "analyst"}]}"#,
        )
        .expect("written");
        let error = UsersFile::new(&path)
            .load()
            .expect_err("a plain password is refused");
        assert!(error.to_string().contains("not a PHC hash"), "{error}");
    }
}
