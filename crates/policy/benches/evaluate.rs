//! Decision throughput.
//!
//! `CARGO_TARGET_DIR=$HOME/.cache/ferrokms-target-policy cargo bench -p ferrokms-policy`

use divan::{black_box, Bencher};
use ferrokms_policy::{
    evaluate, evaluate_with, Action, CombineMode, Context, ContextValue, EvaluationOptions,
    ParseOptions, Policy, PolicyInput, PolicyKind, Request, RequestPrincipal,
};

fn main() {
    divan::main();
}

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const DEFAULT_KEY_POLICY: &str = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;

fn resource_policy(text: &str) -> Policy {
    Policy::parse(
        text,
        &ParseOptions::for_kind(PolicyKind::ResourceBased).with_limits(ferrokms_policy::Limits {
            max_bytes: 1 << 22,
            max_depth: 16,
            max_statements: 100_000,
        }),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A statement in the style of real key policies: a role principal, a few actions, and
/// conditions that the request does not satisfy (so every statement is fully evaluated).
fn conditioned_statement(i: usize) -> String {
    format!(
        r#"{{"Sid":"S{i}","Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::111122223333:role/app-{i}","arn:aws:iam::444455556666:root"]}},
        "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",
        "Condition":{{"StringEquals":{{"kms:ViaService":"s3.us-east-1.amazonaws.com","kms:CallerAccount":"111122223333"}},
        "ForAnyValue:StringLike":{{"kms:EncryptionContextKeys":["app-{i}-*"]}},"IpAddress":{{"aws:SourceIp":["10.{}.{}.0/24"]}}}}}}"#,
        i % 256,
        (i / 256) % 256
    )
}

fn policy_with(n: usize) -> String {
    let mut stmts: Vec<String> = (0..n).map(conditioned_statement).collect();
    stmts.push(
        r#"{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#
            .to_string(),
    );
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    )
}

/// A policy of about 32 KiB (the KMS key-policy limit).
fn policy_32k() -> String {
    let mut n = 1;
    while policy_with(n + 1).len() <= 32 * 1024 {
        n += 1;
    }
    policy_with(n)
}

fn context() -> Context {
    Context::new()
        .with("kms:ViaService", "ec2.us-east-1.amazonaws.com")
        .with("kms:CallerAccount", "111122223333")
        .with("aws:SourceIp", ContextValue::Ip([192, 0, 2, 1].into()))
        .with_multi(
            "kms:EncryptionContextKeys",
            vec![ContextValue::from("tenant")],
        )
}

fn root_request() -> Request {
    let p = RequestPrincipal::from_arn("arn:aws:iam::111122223333:root")
        .unwrap_or_else(|e| panic!("{e}"));
    Request::new(
        p,
        Action::parse("kms:Sign").unwrap_or_else(|e| panic!("{e}")),
        KEY_ARN,
    )
}

fn session_request() -> Request {
    let p = RequestPrincipal::from_arn("arn:aws:sts::111122223333:assumed-role/app-7/session")
        .unwrap_or_else(|e| panic!("{e}"))
        .with_role_arn("arn:aws:iam::111122223333:role/app-7");
    Request::new(
        p,
        Action::parse("kms:Decrypt").unwrap_or_else(|e| panic!("{e}")),
        KEY_ARN,
    )
    .with_context(context())
}

/// The default key policy, root caller: the most common KMS decision.
#[divan::bench]
fn default_key_policy(b: Bencher) {
    let policy = resource_policy(DEFAULT_KEY_POLICY);
    let req = root_request();
    let inputs = [PolicyInput::new("key", PolicyKind::ResourceBased, &policy)];
    let opts = EvaluationOptions {
        mode: CombineMode::ResourcePolicyRequired,
    };
    b.bench(|| black_box(evaluate_with(black_box(&req), black_box(&inputs), &opts).decision));
}

/// The default key policy plus an identity policy, IAM-user caller (KMS delegation path).
#[divan::bench]
fn default_key_policy_with_identity_policy(b: Bencher) {
    let policy = resource_policy(DEFAULT_KEY_POLICY);
    let identity = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Sign","kms:Verify"],"Resource":"arn:aws:kms:*:111122223333:key/*"}]}"#,
        &ParseOptions::for_kind(PolicyKind::IdentityBased),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let p = RequestPrincipal::from_arn("arn:aws:iam::111122223333:user/alice")
        .unwrap_or_else(|e| panic!("{e}"));
    let req = Request::new(
        p,
        Action::parse("kms:Sign").unwrap_or_else(|e| panic!("{e}")),
        KEY_ARN,
    );
    let inputs = [
        PolicyInput::new("key", PolicyKind::ResourceBased, &policy),
        PolicyInput::new("alice", PolicyKind::IdentityBased, &identity),
    ];
    let opts = EvaluationOptions {
        mode: CombineMode::ResourcePolicyRequired,
    };
    b.bench(|| black_box(evaluate_with(black_box(&req), black_box(&inputs), &opts).decision));
}

/// A 30-statement key policy with conditions on every statement.
#[divan::bench]
fn thirty_statements_with_conditions(b: Bencher) {
    let policy = resource_policy(&policy_with(29));
    assert_eq!(policy.statements().len(), 30);
    let req = session_request();
    let inputs = [PolicyInput::new("key", PolicyKind::ResourceBased, &policy)];
    b.bench(|| black_box(evaluate(black_box(&req), black_box(&inputs)).decision));
}

/// A 32 KiB key policy.
#[divan::bench]
fn policy_32_kib(b: Bencher) {
    let text = policy_32k();
    let policy = resource_policy(&text);
    let req = session_request();
    let inputs = [PolicyInput::new("key", PolicyKind::ResourceBased, &policy)];
    b.bench(|| black_box(evaluate(black_box(&req), black_box(&inputs)).decision));
}

/// Cost against the number of statements (should grow linearly).
#[divan::bench(args = [1, 10, 100, 1000])]
fn statements(b: Bencher, n: usize) {
    let policy = resource_policy(&policy_with(n));
    let req = session_request();
    let inputs = [PolicyInput::new("key", PolicyKind::ResourceBased, &policy)];
    b.bench(|| black_box(evaluate(black_box(&req), black_box(&inputs)).decision));
}

/// Parsing the 32 KiB policy (done once per policy change; callers cache the result).
#[divan::bench]
fn parse_32_kib(b: Bencher) {
    let text = policy_32k();
    b.bench(|| black_box(resource_policy(black_box(&text))));
}
