//! The real Rust AWS SDK (`aws-sdk-kms`) against a real `ferrokms serve`
//! process on a free loopback port, with its own data directory.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};
use ferrokms_testkit::process::{fresh_data_dir, read_credentials, sdk_client, ServerProcess};

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

#[tokio::test(flavor = "multi_thread")]
async fn sdk_encrypts_and_decrypts_with_encryption_context_as_aws_does() {
    let (_tmp, data) = fresh_data_dir();
    let server = ServerProcess::on_data_dir(BIN, &data, &[]);
    let kms = sdk_client(
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
    let (_tmp, data) = fresh_data_dir();
    let server = ServerProcess::on_data_dir(BIN, &data, &[]);
    let kms = sdk_client(
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

    let wrong_secret = sdk_client(
        &server.endpoint,
        &("AKIAAAAAAAAAAAAAAAAA".into(), "x".into()),
    );
    let e = wrong_secret.list_keys().send().await.unwrap_err();
    assert_eq!(e.code(), Some("UnrecognizedClientException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_key_and_ciphertext_survive_kill_9() {
    let (_tmp, data) = fresh_data_dir();
    let creds;
    let (key_arn, blob) = {
        let mut server = ServerProcess::on_data_dir(BIN, &data, &[]);
        creds = read_credentials(&data.join("credentials"));
        let kms = sdk_client(&server.endpoint, &creds);
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
    let server = ServerProcess::on_data_dir(BIN, &data, &[]);
    let kms = sdk_client(&server.endpoint, &creds);
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
    let (_tmp, data) = fresh_data_dir();
    let mut server = ServerProcess::on_data_dir(BIN, &data, &[]);
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
    let status = server
        .terminate(Duration::from_secs(5))
        .expect("server exits on SIGTERM");
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    // A second start must not rewrite the credentials.
    let _again = ServerProcess::on_data_dir(BIN, &data, &[]);
    assert_eq!(std::fs::read_to_string(&creds_path).unwrap(), text);
}
