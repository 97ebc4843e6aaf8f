use std::process::ExitCode;

use clap::CommandFactory;
use serde_json::json;

/// Read by the process itself (not a flag): the `tracing` filter.
const PROCESS_VARS: &[(&str, &str, &str)] = &[(
    "AQS_LOG",
    "info",
    "Log filter (tracing EnvFilter syntax), e.g. `info,aqs_warehouse=debug`.",
)];

#[derive(Debug, clap::Args)]
pub struct EnvVarsArgs {
    /// Print JSON (for tools and the deployment checks) instead of a table.
    #[arg(long)]
    json: bool,
}

/// One environment variable a subcommand reads.
struct Var {
    command: String,
    env: String,
    flag: Option<String>,
    default: Option<String>,
    secret: bool,
    help: String,
}

pub fn run(args: EnvVarsArgs) -> anyhow::Result<ExitCode> {
    let mut vars = Vec::new();
    let mut commands = Vec::new();
    collect(&crate::Cli::command(), "", &mut vars, &mut commands);
    if args.json {
        let mut by_command = serde_json::Map::new();
        for command in &commands {
            let entries: Vec<_> = vars
                .iter()
                .filter(|var| &var.command == command)
                .map(|var| {
                    json!({
                        "env": var.env,
                        "flag": var.flag,
                        "default": if var.secret { None } else { var.default.clone() },
                        "secret": var.secret,
                        "help": var.help,
                    })
                })
                .collect();
            by_command.insert(command.clone(), entries.into());
        }
        let process: Vec<_> = PROCESS_VARS
            .iter()
            .map(|(env, default, help)| json!({ "env": env, "default": default, "help": help }))
            .collect();
        let report = json!({ "process": process, "subcommands": by_command });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (env, default, help) in PROCESS_VARS {
            println!(
                "{:<12} {env:<28} {:<24} {help}",
                "(all)",
                format!("[{default}]")
            );
        }
        for var in &vars {
            let default = match (&var.default, var.secret) {
                (_, true) => "[hidden]".to_owned(),
                (Some(default), false) => format!("[{default}]"),
                (None, false) => "[unset]".to_owned(),
            };
            println!(
                "{:<12} {:<28} {default:<24} {}",
                var.command, var.env, var.help
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Walks the subcommands depth first; `commands` gets every subcommand path, also those
/// that read no variable.
fn collect(command: &clap::Command, path: &str, vars: &mut Vec<Var>, commands: &mut Vec<String>) {
    for sub in command.get_subcommands() {
        let name = if path.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{path} {}", sub.get_name())
        };
        commands.push(name.clone());
        for arg in sub.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let default = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy())
                .collect::<Vec<_>>()
                .join(",");
            vars.push(Var {
                command: name.clone(),
                env: env.to_string_lossy().into_owned(),
                flag: arg.get_long().map(|long| format!("--{long}")),
                default: (!arg.get_default_values().is_empty()).then_some(default),
                secret: arg.is_hide_env_values_set(),
                help: arg.get_help().map(ToString::to_string).unwrap_or_default(),
            });
        }
        collect(sub, &name, vars, commands);
    }
}
