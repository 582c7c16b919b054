//! The real Rust AWS SDK (`aws-sdk-kms`) against a real `ferrokms serve`
//! process on a free loopback port, with its own data directory.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};
use aws_sdk_kms::Client;

struct Server {
    child: Child,
    endpoint: String,
}

impl Server {
    /// Starts the binary and waits (bounded) for its "listening" line.
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
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
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not start within 30 s");
        Server { child, endpoint }
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_9();
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn read_credentials(path: &Path) -> (String, String) {
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

fn client(endpoint: &str, creds: &(String, String)) -> Client {
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
    Client::from_conf(conf)
}

fn fresh_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    (dir, data)
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_encrypts_and_decrypts_with_encryption_context_as_aws_does() {
    let (_tmp, data) = fresh_dir();
    let server = Server::start(&data, &[]);
    let kms = client(
        &server.endpoint,
        &read_credentials(&data.join("credentials")),
    );

    let meta = kms
        .create_key()
        .description("sdk")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.key_state, Some(KeyState::Enabled));
    assert_eq!(meta.aws_account_id.as_deref(), Some("111122223333"));
    kms.create_alias()
        .alias_name("alias/sdk")
        .target_key_id(meta.key_id())
        .send()
        .await
        .unwrap();

    let enc = kms
        .encrypt()
        .key_id("alias/sdk")
        .plaintext(Blob::new("attack at dawn"))
        .encryption_context("purpose", "test")
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), meta.arn(), "responses name the key by ARN");

    let dec = kms
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob.clone().unwrap())
        .encryption_context("tenant", "a")
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"attack at dawn");

    let wrong = kms
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob.unwrap())
        .encryption_context("purpose", "other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("InvalidCiphertextException"));

    let dk = kms
        .generate_data_key()
        .key_id(meta.arn().unwrap())
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext.unwrap().as_ref().len(), 16);
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_receives_aws_error_codes_and_messages() {
    let (_tmp, data) = fresh_dir();
    let server = Server::start(&data, &[]);
    let kms = client(
        &server.endpoint,
        &read_credentials(&data.join("credentials")),
    );

    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let e = kms.describe_key().key_id(missing).send().await.unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));
    assert_eq!(
        e.message(),
        Some("Key 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' does not exist")
    );

    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    kms.disable_key().key_id(key.key_id()).send().await.unwrap();
    let e = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("DisabledException"));
    assert_eq!(
        e.message().map(str::to_string),
        Some(format!("{} is disabled.", key.arn().unwrap()))
    );

    let wrong_secret = client(
        &server.endpoint,
        &("AKIAAAAAAAAAAAAAAAAA".into(), "x".into()),
    );
    let e = wrong_secret.list_keys().send().await.unwrap_err();
    assert_eq!(e.code(), Some("UnrecognizedClientException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_key_and_ciphertext_survive_kill_9() {
    let (_tmp, data) = fresh_dir();
    let creds;
    let (key_arn, blob) = {
        let mut server = Server::start(&data, &[]);
        creds = read_credentials(&data.join("credentials"));
        let kms = client(&server.endpoint, &creds);
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
        kms.tag_resource()
            .key_id(key.key_id())
            .tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key("k")
                    .tag_value("v")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let enc = kms
            .encrypt()
            .key_id(key.key_id())
            .plaintext(Blob::new("durable"))
            .send()
            .await
            .unwrap();
        server.kill_9();
        (key.arn().unwrap().to_string(), enc.ciphertext_blob.unwrap())
    };
    let server = Server::start(&data, &[]);
    let kms = client(&server.endpoint, &creds);
    let meta = kms
        .describe_key()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(meta.arn(), Some(key_arn.as_str()));
    let tags = kms
        .list_resource_tags()
        .key_id(&key_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    let dec = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"durable");
}

#[test]
fn secure_first_start_writes_a_private_credentials_file_and_sigterm_stops_cleanly() {
    let (_tmp, data) = fresh_dir();
    let mut server = Server::start(&data, &[]);
    let creds_path = data.join("credentials");
    let text = std::fs::read_to_string(&creds_path).unwrap();
    assert!(text.starts_with("[ferrokms]\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(data.join("root.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (_, secret) = read_credentials(&creds_path);
    let db = std::fs::read(data.join("ferrokms.sqlite")).unwrap();
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret access key must be sealed at rest"
    );
    let status = server.terminate().expect("server exits on SIGTERM");
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    // A second start must not rewrite the credentials.
    let _again = Server::start(&data, &[]);
    assert_eq!(std::fs::read_to_string(&creds_path).unwrap(), text);
}
