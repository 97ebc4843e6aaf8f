//! The audit log: one JSON object per line for every sign-in, failed sign-in, sign-out and
//! export: who, when, what, with which scope, from which address.
//!
//! Each record is appended with one `write` to a file opened in append mode, then synced;
//! the file is opened anew for every record, so the operator rotates it by renaming it (the
//! next record starts a new file) and nothing is ever rewritten. Every record also goes to
//! the service log (target `aqs_audit`), for deployments that collect logs centrally.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::access::Access;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    SignIn,
    SignInFailed,
    SignInRefused,
    SignOut,
    Export,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::SignInRefused => "sign_in_refused",
            Action::SignOut => "sign_out",
            Action::Export => "export",
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub action: Action,
    /// The user name given or known (for a failure: the name that was typed).
    pub user: &'a str,
    /// `password` or `sso`.
    pub method: &'a str,
    pub role: Option<&'static str>,
    /// `all`, or `region R01`, `branch B01`, `team T0003`.
    pub scope: Option<String>,
    pub client: &'a str,
    pub session: Option<&'a str>,
    /// Why a sign-in failed or was refused.
    pub reason: Option<&'a str>,
    /// What an export held (exports only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportRecord>,
}

/// What was exported: the table, its form, the node and the run it shows, how many rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRecord {
    /// `review`, `children`, `ranking` or `at_risk`.
    pub table: String,
    /// `xlsx` or `csv`.
    pub format: String,
    /// The node shown, e.g. `team T0003`.
    pub node: String,
    /// The run's as-of date and the month shown.
    pub as_of: String,
    pub month: String,
    pub rows: usize,
}

impl<'a> Record<'a> {
    pub fn new(action: Action, user: &'a str, method: &'a str, client: &'a str) -> Self {
        Self {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            action,
            user,
            method,
            role: None,
            scope: None,
            client,
            session: None,
            reason: None,
            export: None,
        }
    }

    pub fn access(mut self, access: &Access) -> Self {
        self.role = Some(access.role().as_str());
        self.scope = Some(access.scope().to_string());
        self
    }

    pub fn session(mut self, id: &'a str) -> Self {
        self.session = Some(id);
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn export(mut self, export: ExportRecord) -> Self {
        self.export = Some(export);
        self
    }
}

/// The audit log file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    /// One record at a time, so lines never interleave within this process.
    writing: Mutex<()>,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            writing: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record`. A record that cannot be written is logged as an error with its
    /// content, never dropped silently.
    pub fn record(&self, record: &Record<'_>) {
        let line = serde_json::to_string(record).unwrap_or_default();
        tracing::info!(target: "aqs_audit", action = record.action.as_str(), user = record.user, client = record.client, record = %line, "audit");
        let _guard = match self.writing.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Err(error) = self.append(&line) {
            tracing::error!(path = %self.path.display(), %error, record = %line, "audit record not written to the file");
        }
    }

    fn append(&self, line: &str) -> std::io::Result<()> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let mut options = fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
        let mut file = options.open(&self.path)?;
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    #[test]
    fn records_are_appended_one_line_each_and_survive_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::new(&path);
        let access = Access::new(Role::Supervisor, Some("T0003"), false).expect("valid");
        log.record(
            &Record::new(Action::SignIn, "li", "password", "127.0.0.1")
                .access(&access)
                .session("s1"),
        );
        log.record(
            &Record::new(Action::SignInFailed, "li", "password", "127.0.0.1")
                .reason("wrong_password"),
        );
        let text = fs::read_to_string(&path).expect("written");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["action"], "sign_in");
        assert_eq!(lines[0]["scope"], "team T0003");
        assert_eq!(lines[0]["role"], "supervisor");
        assert_eq!(lines[0]["client"], "127.0.0.1");
        assert_eq!(lines[1]["reason"], "wrong_password");
        // Rotation: the operator renames the file; the next record starts a new one.
        fs::rename(&path, dir.path().join("audit.jsonl.1")).expect("rotated");
        log.record(&Record::new(Action::SignOut, "li", "password", "127.0.0.1"));
        assert_eq!(
            fs::read_to_string(&path).expect("new file").lines().count(),
            1
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("audit.jsonl.1"))
                .expect("old")
                .lines()
                .count(),
            2
        );
    }
}
