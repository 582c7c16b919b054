//! `ferrokms serve --config FILE` (or `FERROKMS_CONFIG`): a TOML file whose
//! keys are `serve`'s long option names (`listen = "0.0.0.0:7300"`,
//! `data-dir = "/var/lib/ferrokms"`, `dev = true`, ...). A key sets its
//! option only when neither the command line nor the option's environment
//! variable does: command line > environment > file > default.
//!
//! It works on the arguments: the command line is parsed once (errors
//! ignored) to learn where each option's value came from, and every file
//! key whose option came from nowhere but its default is appended as
//! `--key=value`; clap then parses the result as usual, so the file's
//! values meet the same checks (types, ranges, `requires`) as a flag's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory};

/// The arguments with the config file's options added (unchanged when the
/// command is not `serve` or no config file is named).
pub fn apply<C: CommandFactory>(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let command = C::command().ignore_errors(true);
    let Ok(matches) = command.clone().try_get_matches_from(args.clone()) else {
        // --help, --version: nothing to add.
        return Ok(args);
    };
    let Some(("serve", serve_matches)) = matches.subcommand() else {
        return Ok(args);
    };
    let Some(path) = serve_matches.get_one::<PathBuf>("config").cloned() else {
        return Ok(args);
    };
    let Some(serve) = command.find_subcommand("serve") else {
        return Ok(args);
    };
    let table = read(&path)?;
    let options: Vec<&clap::Arg> = serve
        .get_arguments()
        .filter(|a| {
            a.get_long().is_some_and(|l| l != "config")
                && !a.is_hide_set()
                && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)
        })
        .collect();
    let mut out = args;
    for (key, value) in &table {
        let Some(arg) = options.iter().find(|a| a.get_long() == Some(key.as_str())) else {
            let known: Vec<&str> = options.iter().filter_map(|a| a.get_long()).collect();
            let dashed = key.replace('_', "-");
            let hint = if known.contains(&dashed.as_str()) {
                format!(" (did you mean '{dashed}'?)")
            } else {
                String::new()
            };
            bail!(
                "config file {}: unknown key '{key}'{hint}; the keys are serve's long options: {}",
                path.display(),
                known.join(", ")
            );
        };
        let id = arg.get_id().as_str();
        if matches!(
            serve_matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let what = |expected: &str| {
            anyhow!(
                "config file {}: '{key}' must be {expected}, not {}",
                path.display(),
                value.type_str()
            )
        };
        match arg.get_action() {
            ArgAction::SetTrue => match value.as_bool() {
                Some(true) => out.push(format!("--{key}").into()),
                Some(false) => {}
                None => return Err(what("true or false")),
            },
            ArgAction::Append => {
                let items = match value {
                    toml::Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for item in items {
                    let text = scalar(item).ok_or_else(|| what("a string or a list of strings"))?;
                    out.push(format!("--{key}={text}").into());
                }
            }
            _ => {
                let text = scalar(value).ok_or_else(|| what("a string or a number"))?;
                out.push(format!("--{key}={text}").into());
            }
        }
    }
    Ok(out)
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn read(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .map(|s| text.bytes().take(s.start).filter(|b| *b == b'\n').count() + 1);
        match line {
            Some(n) => anyhow!(
                "config file {} line {n}: {}",
                path.display(),
                e.message().trim_end()
            ),
            None => anyhow!("config file {}: {}", path.display(), e.message().trim_end()),
        }
    })
}

/// The PostgreSQL password in `--store-password-file`, if given.
pub fn store_password(
    file: Option<&Path>,
) -> anyhow::Result<Option<ferrokms_server::setup::StorePassword>> {
    file.map(|f| read_password(f).map(ferrokms_server::setup::StorePassword))
        .transpose()
}

/// The PostgreSQL password in a file (`--store-password-file`): its text
/// without the trailing newline.
fn read_password(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the PostgreSQL password file {}",
            path.display()
        )
    })?;
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("the PostgreSQL password file {} is empty", path.display());
    }
    Ok(password.to_string())
}
