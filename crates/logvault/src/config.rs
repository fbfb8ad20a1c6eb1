//! The optional TOML configuration file (`--config FILE` or `LOGVAULT_CONFIG`): deployment
//! defaults for any setting that has a `LOGVAULT_*` variable, named the way the variable is.
//! `listen = "0.0.0.0:8080"` sets `LOGVAULT_LISTEN`'s setting, and a table prefixes its keys,
//! so `[retention] audit_days = 730` is `LOGVAULT_RETENTION_AUDIT_DAYS`. Flags override
//! environment variables, which override the file, which overrides the built-in defaults.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! db = "postgres://logvault@db.internal/logvault"
//! rate_limit = 5000
//! purge_interval = "1h"
//! archive_dir = "/srv/logvault-archive"
//!
//! [retention]
//! audit_days = 730
//! threat_days = 90
//! floor_days = 365
//! archive = true
//!
//! [[siem.streams]]
//! name = "soc"
//! format = "syslog"
//! address = "siem.internal:6514"
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, Command};
use serde_json::Value;

/// `args` with the file's settings added as flags wherever neither a flag nor an environment
/// variable gave that setting, or an error naming the file's problem.
pub(crate) fn apply(command: &Command, args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Ok(matches) = command.clone().try_get_matches_from(&args) else {
        // Let the real parse report the command line's own errors.
        return Ok(args);
    };
    let Some(path) = matches.get_one::<std::path::PathBuf>("config") else {
        return Ok(args);
    };
    let settings = read(path)?;
    let known = known_variables(command);
    if let Some(unknown) = settings.keys().find(|name| !known.contains(name.as_str())) {
        anyhow::bail!(
            "{}: no setting {} (it would be {unknown})",
            path.display(),
            setting_name(unknown)
        );
    }
    // The command that runs, and what its arguments were given by.
    let (mut command, mut matches) = (command, &matches);
    while let Some((name, sub)) = matches.subcommand() {
        let Some(next) = command.find_subcommand(name) else {
            break;
        };
        (command, matches) = (next, sub);
    }
    let mut args = args;
    for arg in command.get_arguments() {
        let (Some(variable), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let Some(value) = variable.to_str().and_then(|name| settings.get(name)) else {
            continue;
        };
        let given = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if given {
            continue;
        }
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, Value::Bool(true)) => args.push(format!("--{long}").into()),
            (ArgAction::SetTrue, Value::Bool(false)) => {}
            (ArgAction::SetTrue, _) => anyhow::bail!(
                "{}: {} must be true or false",
                path.display(),
                setting_name(variable.to_str().unwrap_or_default())
            ),
            // An array of tables, such as `[[siem.streams]]`: one flag per table, its keys
            // as `key=value` pairs.
            (ArgAction::Append, Value::Array(items)) => {
                for item in items {
                    let Value::Object(table) = item else {
                        anyhow::bail!(
                            "{}: each {} must be a table",
                            path.display(),
                            setting_name(variable.to_str().unwrap_or_default())
                        );
                    };
                    let pairs: Vec<String> = table
                        .iter()
                        .map(|(key, value)| match value {
                            Value::String(text) => format!("{key}={text}"),
                            other => format!("{key}={other}"),
                        })
                        .collect();
                    args.push(format!("--{long}={}", pairs.join(",")).into());
                }
            }
            (_, Value::String(text)) => args.push(format!("--{long}={text}").into()),
            (_, Value::Number(number)) => args.push(format!("--{long}={number}").into()),
            (_, Value::Bool(flag)) => args.push(format!("--{long}={flag}").into()),
            _ => anyhow::bail!(
                "{}: {} must be a string, a number or true/false",
                path.display(),
                setting_name(variable.to_str().unwrap_or_default())
            ),
        }
    }
    Ok(args)
}

/// The file's settings by the variable each stands for.
fn read(path: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the config file {}: {e}", path.display()))?;
    let table: serde_json::Map<String, Value> = basic_toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not valid TOML: {e}", path.display()))?;
    let mut settings = BTreeMap::new();
    for (key, value) in table {
        match value {
            Value::Object(inner) => {
                for (inner_key, value) in inner {
                    settings.insert(variable(&format!("{key}_{inner_key}")), value);
                }
            }
            value => {
                settings.insert(variable(&key), value);
            }
        }
    }
    Ok(settings)
}

fn variable(key: &str) -> String {
    format!("LOGVAULT_{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// How the file names the setting of `variable`.
fn setting_name(variable: &str) -> String {
    variable
        .trim_start_matches("LOGVAULT_")
        .to_ascii_lowercase()
}

/// Every `LOGVAULT_*` variable any command reads.
fn known_variables(command: &Command) -> std::collections::BTreeSet<String> {
    let mut known: std::collections::BTreeSet<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_env()?.to_str().map(str::to_string))
        .collect();
    for sub in command.get_subcommands() {
        known.extend(known_variables(sub));
    }
    known.remove("LOGVAULT_CONFIG");
    known
}

/// The `--config` argument every command takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConfigArg {
    /// TOML file of deployment defaults (flags and LOGVAULT_* variables override it).
    #[arg(long = "config", id = "config", env = "LOGVAULT_CONFIG", global = true)]
    pub(crate) config: Option<std::path::PathBuf>,
}
