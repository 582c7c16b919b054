//! `ferrokms serve --config FILE` (and `FERROKMS_CONFIG`), run as the
//! binary: the file's values apply, the command line and the environment win
//! over it, unknown keys and wrong types are refused naming the key, and the
//! PostgreSQL password file is read (and refused when it cannot be).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `ferrokms` with a clean FERROKMS_* environment (a developer's shell may
/// set some) plus `env`.
fn ferrokms(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrokms"));
    for (k, _) in std::env::vars() {
        if k.starts_with("FERROKMS_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("FERROKMS_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// With `no-create`, `serve` names the data directory it would have used
/// and exits: which one says where the value came from.
#[test]
fn file_values_apply_and_command_line_and_environment_win() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let config = write(
        tmp.path(),
        "ferrokms.toml",
        &format!("# a comment\ndata-dir = \"{dir}/from-file\"\nno-create = true\n"),
    );

    let o = ferrokms(&["serve", "--config", &config], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{dir}/from-file does not exist")),
        "{}",
        stderr(&o)
    );

    // FERROKMS_CONFIG names the file as well as --config.
    let o = ferrokms(&["serve"], &[("FERROKMS_CONFIG", &config)]);
    assert!(
        stderr(&o).contains(&format!("{dir}/from-file does not exist")),
        "{}",
        stderr(&o)
    );

    let o = ferrokms(
        &[
            "serve",
            "--config",
            &config,
            "--data-dir",
            &format!("{dir}/from-cli"),
        ],
        &[],
    );
    assert!(
        stderr(&o).contains(&format!("{dir}/from-cli does not exist")),
        "{}",
        stderr(&o)
    );

    let o = ferrokms(
        &["serve", "--config", &config],
        &[("FERROKMS_DATA_DIR", &format!("{dir}/from-env"))],
    );
    assert!(
        stderr(&o).contains(&format!("{dir}/from-env does not exist")),
        "{}",
        stderr(&o)
    );

    // The command line beats the environment, which beats the file.
    let o = ferrokms(
        &[
            "serve",
            "--config",
            &config,
            "--data-dir",
            &format!("{dir}/from-cli"),
        ],
        &[("FERROKMS_DATA_DIR", &format!("{dir}/from-env"))],
    );
    assert!(
        stderr(&o).contains(&format!("{dir}/from-cli does not exist")),
        "{}",
        stderr(&o)
    );
}

/// A whole start from the file: in-memory, listening where the file says
/// (a port the system picks), repeatable options as a list.
#[test]
fn a_server_starts_from_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write(
        tmp.path(),
        "ferrokms.toml",
        "listen = \"127.0.0.1:0\"\nin-memory = true\nheader-timeout = 5\n\
         via-service-principal = [\"arn:aws:iam::111122223333:role/a\", \"arn:aws:iam::111122223333:role/b\"]\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(["serve", "--config", &config])
        .env("FERROKMS_LOG", "warn")
        .env_remove("FERROKMS_LISTEN")
        .env_remove("FERROKMS_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("ferrokms listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(!line.contains(":7300"), "{line}");
}

#[test]
fn unknown_keys_and_wrong_types_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write(
        tmp.path(),
        "a.toml",
        "listen = \"127.0.0.1:0\"\nlisten-adress = \"x\"\n",
    );
    let o = ferrokms(&["serve", "--config", &config], &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("unknown key 'listen-adress'"), "{e}");
    assert!(e.contains("listen, data-dir,"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    let config = write(tmp.path(), "b.toml", "data_dir = \"x\"\n");
    let e = stderr(&ferrokms(&["serve", "--config", &config], &[]));
    assert!(
        e.contains("unknown key 'data_dir' (did you mean 'data-dir'?)"),
        "{e}"
    );

    let config = write(tmp.path(), "c.toml", "in-memory = \"yes\"\n");
    let e = stderr(&ferrokms(&["serve", "--config", &config], &[]));
    assert!(
        e.contains("'in-memory' must be true or false, not string"),
        "{e}"
    );

    let config = write(tmp.path(), "d.toml", "listen = \"127.0.0.1:0\"\n[tls]\n");
    let e = stderr(&ferrokms(&["serve", "--config", &config], &[]));
    assert!(e.contains("unknown key 'tls'"), "{e}");

    let config = write(tmp.path(), "e.toml", "\nlisten = [\n");
    let e = stderr(&ferrokms(&["serve", "--config", &config], &[]));
    assert!(e.contains("e.toml line 2:"), "{e}");

    let missing = tmp.path().join("missing.toml");
    let e = stderr(&ferrokms(
        &["serve", "--config", missing.to_str().unwrap()],
        &[],
    ));
    assert!(
        e.contains("cannot read config file") && e.contains("missing.toml"),
        "{e}"
    );

    // The file's values meet clap's checks like a flag's.
    let config = write(tmp.path(), "f.toml", "header-timeout = 0\n");
    let o = ferrokms(&["serve", "--config", &config], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--header-timeout"), "{}", stderr(&o));
}

#[test]
fn the_postgres_password_file_is_read_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().display().to_string();
    let missing = format!("{dir}/no-such-password");
    let config = write(
        tmp.path(),
        "pg.toml",
        &format!(
            "store = \"postgres://ferrokms@127.0.0.1:1/ferrokms\"\nstore-password-file = \"{missing}\"\ndata-dir = \"{dir}/d\"\n"
        ),
    );
    let e = stderr(&ferrokms(&["serve", "--config", &config], &[]));
    assert!(
        e.contains(&format!(
            "cannot read the PostgreSQL password file {missing}"
        )),
        "{e}"
    );

    let password = write(tmp.path(), "password", "s3cret\n");
    let both = ferrokms(
        &[
            "serve",
            "--store",
            "postgres://ferrokms:inline@127.0.0.1:1/ferrokms",
            "--store-password-file",
            &password,
            "--data-dir",
            &format!("{dir}/d"),
        ],
        &[],
    );
    let e = stderr(&both);
    assert!(
        e.contains("has a password and a password file is given too"),
        "{e}"
    );
    assert!(!e.contains("s3cret") && !e.contains("inline"), "{e}");

    // With the file read, the connection is attempted (and refused: port 1).
    let e = stderr(&ferrokms(
        &[
            "serve",
            "--store",
            "postgres://ferrokms@127.0.0.1:1/ferrokms",
            "--store-password-file",
            &password,
            "--data-dir",
            &format!("{dir}/d"),
        ],
        &[],
    ));
    assert!(e.contains("cannot connect to PostgreSQL at"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}
