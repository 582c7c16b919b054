//! Writes the seed corpus of the fuzz targets into `fuzz/corpus/` (run from
//! the repository root: `cargo run -p ferrokms-fuzzing --bin seed-corpus`).
//! Seeds are valid or nearly valid inputs, so that libFuzzer starts from
//! inputs that reach deep into each parser; they are deterministic, so a
//! rerun rewrites the same files.

use std::path::Path;
use std::time::{Duration, SystemTime};

use ferrokms_fuzzing::{SIGV4_NOW_SECS, SIGV4_SECRET};
use ferrokms_sigv4::{sign_request, Credentials, HttpRequest};

fn write(target: &str, name: &str, data: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), data)
}

const KMS_SEEDS: &[(&str, &str)] = &[
    (
        "CreateKey",
        r#"{"Description":"d","KeyUsage":"ENCRYPT_DECRYPT","Tags":[{"TagKey":"a","TagValue":"b"}]}"#,
    ),
    (
        "CreateKey",
        r#"{"KeySpec":"ECC_SECG_P256K1","KeyUsage":"SIGN_VERIFY","MultiRegion":true}"#,
    ),
    ("DescribeKey", r#"{"KeyId":"$SYM"}"#),
    ("DescribeKey", r#"{"KeyId":"alias/aws/s3"}"#),
    ("ListKeys", r#"{"Limit":10,"Marker":"x"}"#),
    ("EnableKey", r#"{"KeyId":"$SYM"}"#),
    ("DisableKey", r#"{"KeyId":"$SYM"}"#),
    (
        "ScheduleKeyDeletion",
        r#"{"KeyId":"$SYM","PendingWindowInDays":7}"#,
    ),
    ("CancelKeyDeletion", r#"{"KeyId":"$SYM"}"#),
    (
        "UpdateKeyDescription",
        r#"{"KeyId":"$SYM","Description":"new"}"#,
    ),
    (
        "CreateAlias",
        r#"{"AliasName":"alias/a","TargetKeyId":"$SYM"}"#,
    ),
    (
        "UpdateAlias",
        r#"{"AliasName":"alias/a","TargetKeyId":"$SYM"}"#,
    ),
    ("DeleteAlias", r#"{"AliasName":"alias/a"}"#),
    ("ListAliases", r#"{"KeyId":"$SYM","Limit":1}"#),
    (
        "TagResource",
        r#"{"KeyId":"$SYM","Tags":[{"TagKey":"k","TagValue":"v"}]}"#,
    ),
    ("UntagResource", r#"{"KeyId":"$SYM","TagKeys":["k"]}"#),
    ("ListResourceTags", r#"{"KeyId":"$SYM"}"#),
    ("GetKeyPolicy", r#"{"KeyId":"$SYM","PolicyName":"default"}"#),
    (
        "PutKeyPolicy",
        r#"{"KeyId":"$SYM","PolicyName":"default","Policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"}"#,
    ),
    ("ListKeyPolicies", r#"{"KeyId":"$SYM"}"#),
    (
        "EnableKeyRotation",
        r#"{"KeyId":"$SYM","RotationPeriodInDays":90}"#,
    ),
    ("DisableKeyRotation", r#"{"KeyId":"$SYM"}"#),
    ("GetKeyRotationStatus", r#"{"KeyId":"$SYM"}"#),
    ("RotateKeyOnDemand", r#"{"KeyId":"$SYM"}"#),
    ("ListKeyRotations", r#"{"KeyId":"$SYM"}"#),
    (
        "Encrypt",
        r#"{"KeyId":"$SYM","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#,
    ),
    ("Decrypt", r#"{"CiphertextBlob":"AQ==","KeyId":"$SYM"}"#),
    (
        "ReEncrypt",
        r#"{"CiphertextBlob":"AQ==","DestinationKeyId":"$SYM"}"#,
    ),
    ("GenerateDataKey", r#"{"KeyId":"$SYM","KeySpec":"AES_256"}"#),
    (
        "GenerateDataKey",
        r#"{"KeyId":"$SYM","NumberOfBytes":1024}"#,
    ),
    (
        "GenerateDataKeyWithoutPlaintext",
        r#"{"KeyId":"$SYM","NumberOfBytes":16}"#,
    ),
    ("GenerateRandom", r#"{"NumberOfBytes":32}"#),
    (
        "CreateGrant",
        r#"{"KeyId":"$SYM","GranteePrincipal":"arn:aws:iam::111122223333:user/u","Operations":["Decrypt"],"Constraints":{"EncryptionContextSubset":{"a":"b"}}}"#,
    ),
    ("ListGrants", r#"{"KeyId":"$SYM"}"#),
    (
        "ListRetirableGrants",
        r#"{"RetiringPrincipal":"arn:aws:iam::111122223333:user/u"}"#,
    ),
    ("RetireGrant", r#"{"GrantToken":"abc"}"#),
    (
        "RevokeGrant",
        r#"{"KeyId":"$SYM","GrantId":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
    ),
    (
        "Sign",
        r#"{"KeyId":"$ECC","Message":"aGVsbG8=","SigningAlgorithm":"ECDSA_SHA_256"}"#,
    ),
    (
        "Verify",
        r#"{"KeyId":"$ECC","Message":"aGVsbG8=","Signature":"MEUCIQ==","SigningAlgorithm":"ECDSA_SHA_256","MessageType":"RAW"}"#,
    ),
    ("GetPublicKey", r#"{"KeyId":"$ECC"}"#),
    (
        "GenerateMac",
        r#"{"KeyId":"$HMAC","Message":"aGVsbG8=","MacAlgorithm":"HMAC_SHA_256"}"#,
    ),
    (
        "VerifyMac",
        r#"{"KeyId":"$HMAC","Message":"aGVsbG8=","Mac":"AAAA","MacAlgorithm":"HMAC_SHA_256"}"#,
    ),
    (
        "DeriveSharedSecret",
        r#"{"KeyId":"$ECDH","KeyAgreementAlgorithm":"ECDH","PublicKey":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"}"#,
    ),
    (
        "GenerateDataKeyPair",
        r#"{"KeyId":"$SYM","KeyPairSpec":"ECC_NIST_P256"}"#,
    ),
    (
        "GenerateDataKeyPairWithoutPlaintext",
        r#"{"KeyId":"$SYM","KeyPairSpec":"ECC_NIST_P384"}"#,
    ),
    (
        "ConnectCustomKeyStore",
        r#"{"CustomKeyStoreId":"cks-1234567890abcdef0"}"#,
    ),
    ("NoSuchOperation", r#"{}"#),
    // Appended, so that the files of the seeds above keep their numbers.
    (
        "Encapsulate",
        r#"{"KeyId":"$KEM","EncapsulationAlgorithm":"ML_KEM"}"#,
    ),
    (
        "Decapsulate",
        r#"{"KeyId":"$KEM","SharedSecretCiphertextBlob":"AAAA","EncapsulationAlgorithm":"ML_KEM"}"#,
    ),
];

const QUERY_SEEDS: &[(&str, &str, &str)] = &[
    ("iam", "", "Action=CreateUser&Version=2010-05-08&UserName=alice&Path=%2Fteam%2F&Tags.member.1.Key=a&Tags.member.1.Value=b"),
    ("iam", "Action=ListUsers&MaxItems=10", ""),
    ("iam", "", "Action=CreateRole&RoleName=r&AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D"),
    ("iam", "", "Action=PutUserPolicy&UserName=alice&PolicyName=p&PolicyDocument=%7B%7D"),
    ("iam", "", "Action=CreateAccessKey&UserName=nobody"),
    ("iam", "", "Action=AttachRolePolicy&RoleName=r&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FX"),
    ("iam", "", "Action=CreateGroup&GroupName=g"),
    ("sts", "", "Action=GetCallerIdentity&Version=2011-06-15"),
    ("sts", "", "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fr&RoleSessionName=s&DurationSeconds=900&PolicyArns.member.1.arn=x"),
    ("sts", "", "Action=GetSessionToken&DurationSeconds=3600"),
];

fn sigv4_seeds() -> std::io::Result<()> {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(SIGV4_NOW_SECS);
    let creds = Credentials {
        access_key_id: "AKIAFUZZFUZZFUZZFUZZ",
        secret_access_key: SIGV4_SECRET,
        session_token: None,
    };
    let cases: [(&str, &str, &str, &[u8]); 3] = [
        ("kms", "/", "", br#"{"KeyId":"alias/x"}"#),
        ("iam", "/", "Action=ListUsers&Version=2010-05-08", b""),
        (
            "sts",
            "/",
            "",
            b"Action=GetCallerIdentity&Version=2011-06-15",
        ),
    ];
    for (i, (service, path, query, body)) in cases.iter().enumerate() {
        let base = [
            ("Host", "127.0.0.1:7300"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "TrentService.DescribeKey"),
        ];
        let unsigned = HttpRequest {
            method: "POST",
            path,
            query,
            headers: &base,
            body,
        };
        let signed = sign_request(&unsigned, &creds, "us-east-1", service, at);
        let mut text = if query.is_empty() {
            format!("POST {path}\n")
        } else {
            format!("POST {path}?{query}\n")
        };
        for (k, v) in base.iter().copied().chain(signed.iter()) {
            text.push_str(&format!("{k}: {v}\n"));
        }
        text.push('\n');
        let mut data = text.into_bytes();
        data.extend_from_slice(body);
        write("sigv4", &format!("signed-{i}-{service}"), &data)?;
    }
    // Presigned (query-string) form; its signature does not match, which
    // still exercises the query-side parsing.
    write(
        "sigv4",
        "presigned",
        b"GET /?Action=ListUsers&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAFUZZFUZZFUZZFUZZ%2F20240101%2Fus-east-1%2Fiam%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=0000000000000000000000000000000000000000000000000000000000000000\nHost: 127.0.0.1\n\n",
    )?;
    write(
        "sigv4",
        "session-token",
        b"POST /\nHost: 127.0.0.1\nX-Amz-Date: 20240101T000000Z\nX-Amz-Security-Token: tok\nAuthorization: AWS4-HMAC-SHA256 Credential=ASIAFUZZFUZZFUZZFUZZ/20240101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=00\n\n{}",
    )
}

fn main() -> std::io::Result<()> {
    for (i, (op, body)) in KMS_SEEDS.iter().enumerate() {
        write(
            "kms_request",
            &format!("{i:02}-{op}"),
            format!("{op}\n{body}").as_bytes(),
        )?;
    }
    for (i, (service, query, body)) in QUERY_SEEDS.iter().enumerate() {
        write(
            "query",
            &format!("{i:02}-{service}"),
            format!("{service}\n{query}\n{body}").as_bytes(),
        )?;
    }
    sigv4_seeds()?;
    for (name, blob) in ferrokms_fuzzing::seed_ciphertexts() {
        write("ciphertext", name, &blob)?;
    }
    Ok(())
}
