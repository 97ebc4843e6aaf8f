//! `aqs user`: the dashboard's local users file (add, list, remove, new password) and the
//! revocation of a user's sessions.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aqs_dashboard::auth::revocations::Revocations;
use aqs_dashboard::auth::users::{NewUser, UsersFile, random_password};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    action: UserAction,
    /// Folder of the embedded stores, where the users file is by default.
    #[arg(long, env = "AQS_DATA_DIR", default_value = "aqs-data", global = true)]
    data_dir: PathBuf,
    /// The local users file. Unset: `dashboard-users.json` in the data folder.
    #[arg(
        long = "dashboard-users-file",
        env = "AQS_DASHBOARD_USERS_FILE",
        value_name = "FILE",
        global = true
    )]
    users_file: Option<PathBuf>,
    /// Revoked sessions. Unset: `dashboard-revocations.jsonl` in the data folder.
    #[arg(
        long = "dashboard-revocations-file",
        env = "AQS_DASHBOARD_REVOCATIONS_FILE",
        value_name = "FILE",
        global = true
    )]
    revocations_file: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum UserAction {
    /// Add a user. The password is read from standard input with --password-stdin, or made
    /// up and printed.
    Add {
        name: String,
        /// headquarters, branch_manager, supervisor or analyst.
        #[arg(long)]
        role: String,
        /// Region (headquarters; none: the whole organisation), branch (branch_manager) or
        /// team (supervisor) id.
        #[arg(long)]
        scope: Option<String>,
        /// Let an analyst see agents' names.
        #[arg(long)]
        agent_names: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users with their role and scope (never their hashes).
    List,
    /// Remove a user; their sessions end at their next request.
    Remove { name: String },
    /// Set a new password (from standard input with --password-stdin, or made up and printed).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of a user now, on every replica reading the same revocations file
    /// (also for single sign-on users).
    Revoke { name: String },
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((random_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok((password, false))
}

pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.data_dir.clone();
    let file = UsersFile::new(
        args.users_file
            .clone()
            .unwrap_or_else(|| aqs_tables::DataDir::new(&data_dir).dashboard_users()),
    );
    match args.action {
        UserAction::Add {
            name,
            role,
            scope,
            agent_names,
            password_stdin,
        } => {
            let (password, made_up) = password(password_stdin)?;
            let user = file.add(NewUser {
                name: &name,
                password: &password,
                role: &role,
                scope: scope.as_deref(),
                agent_names,
            })?;
            let access = user.access()?;
            println!(
                "added {} ({}, {}) to {}",
                user.name,
                access.role(),
                access.scope(),
                file.path().display()
            );
            if made_up {
                println!("password: {password}");
            }
        }
        UserAction::List => {
            for user in file.load()? {
                let access = user.access()?;
                println!(
                    "{:<24} {:<15} {:<16} agent names: {}",
                    user.name,
                    access.role().as_str(),
                    access.scope().to_string(),
                    if access.agent_names() { "yes" } else { "no" }
                );
            }
        }
        UserAction::Remove { name } => {
            file.remove(&name)?;
            println!("removed {name} from {}", file.path().display());
        }
        UserAction::Passwd {
            name,
            password_stdin,
        } => {
            let (password, made_up) = password(password_stdin)?;
            file.set_password(&name, &password)?;
            println!("new password set for {name}");
            if made_up {
                println!("password: {password}");
            }
        }
        UserAction::Revoke { name } => {
            let path = args
                .revocations_file
                .unwrap_or_else(|| aqs_tables::DataDir::new(&data_dir).dashboard_revocations());
            Revocations::new(&path).revoke_user(&name, chrono::Utc::now().timestamp())?;
            println!(
                "sessions of {name} issued until now are revoked ({})",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
