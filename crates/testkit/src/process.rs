//! The `ferrokms` binary as a test drives it: a server process on a free
//! loopback port, waited for through its "listening" line, killed when
//! dropped; and one-shot runs of a subcommand.
//!
//! The binary's path comes from the test (`env!("CARGO_BIN_EXE_ferrokms")`
//! exists only in the crate that builds it).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One `ferrokms serve --listen 127.0.0.1:0 ...` process.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, from the listening line.
    pub endpoint: String,
}

impl ServerProcess {
    /// Starts `BIN serve --listen 127.0.0.1:0 ARGS` (log level warn, stderr
    /// discarded) and waits, at most 30 s, for its listening line.
    pub fn start<S: AsRef<OsStr>>(bin: impl AsRef<Path>, args: &[S]) -> ServerProcess {
        let mut child = Command::new(bin.as_ref())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("FERROKMS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferrokms");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("ferrokms listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let endpoint = rx
            .recv_timeout(START_TIMEOUT)
            .expect("server did not start within 30 s");
        ServerProcess { child, endpoint }
    }

    /// Starts a server on `data_dir` (created on first start), with `extra`
    /// arguments.
    pub fn on_data_dir(bin: impl AsRef<Path>, data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let mut args = vec![OsStr::new("--data-dir"), data_dir.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        ServerProcess::start(bin, &args)
    }

    /// SIGKILL and wait: no chance to clean up.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait at most `within` for the process to exit; killed
    /// (and `None`) if it has not.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_9();
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Runs `BIN ARGS` (log level warn) to completion.
pub fn run(bin: impl AsRef<Path>, args: &[&str]) -> Output {
    Command::new(bin.as_ref())
        .args(args)
        .env("FERROKMS_LOG", "warn")
        .output()
        .expect("run ferrokms")
}

/// The status a shell shows for a tool killed by SIGPIPE (128 + 13).
pub const BROKEN_PIPE: Option<i32> = Some(141);

/// Standard output whose reader has already gone: the next write fails
/// with EPIPE.
pub fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// Runs `BIN ARGS` (log level warn) with standard output a closed pipe:
/// (status, stderr).
pub fn run_into_closed_pipe(bin: impl AsRef<Path>, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(bin.as_ref())
        .args(args)
        .env("FERROKMS_LOG", "warn")
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A fresh temporary directory and, inside it, the path of a data
/// directory not yet created (the server creates it on first start).
pub fn fresh_data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    (dir, data)
}

/// The root access key of a credentials file the server wrote on first
/// start: (access key id, secret access key).
pub fn read_credentials(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("credentials file");
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
            })
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    (get("aws_access_key_id"), get("aws_secret_access_key"))
}

/// A client of the real AWS SDK for KMS, in us-east-1, against `endpoint`
/// with the access key `creds`.
#[cfg(feature = "sdk")]
pub fn sdk_client(endpoint: &str, creds: &(String, String)) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            &creds.0,
            &creds.1,
            None,
            None,
            "ferrokms-test",
        ))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}
