//! Tests of the record writer: fixed cases for each kind of caller, the
//! connection memo against writing afresh, and the fast writer against a plain
//! serde serialization of the typed record over generated records.

use super::*;
use serde_json::{json, Value};

#[test]
fn records_written_through_the_connection_memo_equal_records_written_afresh() {
    use ferrokms_iam::Principal;
    use ferrokms_kms::authz::AuthzRecord;
    use ferrokms_types::AccountId;
    let root = |a: &str| {
        identity(Principal::Root {
            account: AccountId::parse(a).unwrap(),
        })
    };
    let (a, b) = (root("111122223333"), root("444455556666"));
    let mut b_other_key = root("444455556666");
    b_other_key.access_key_id = "AKIAOTHER".into();
    let mut a_in_china = root("111122223333");
    a_in_china.region = ferrokms_types::Region::parse("cn-north-1").unwrap();
    let user = identity(Principal::User {
        account: AccountId::parse("111122223333").unwrap(),
        name: "alice".into(),
        path: "/".into(),
        id: "AIDAEXAMPLE".into(),
    });
    let decision = |key: &str, allowed: bool| AuthzRecord {
        action: "kms:Encrypt".into(),
        resource: format!("arn:aws:kms:us-east-1:111122223333:key/{key}"),
        allowed,
        reason: if allowed {
            ferrokms_authz::Reason::Allowed
        } else {
            ferrokms_authz::Reason::Unrecognized
        },
        decision: if allowed {
            "allow".into()
        } else {
            "because \"no\"".into()
        },
        statements: vec!["key policy #0 (Enable IAM User Permissions) Allow".into()],
    };
    let k1 = [decision("k1", true)];
    let k2 = [decision("k2", true)];
    let k1_denied = [decision("k1", false)];
    let ips = [
        Some("127.0.0.1".parse().unwrap()),
        Some("10.0.0.2".parse().unwrap()),
        None,
    ];
    // Each line changes one input from the line before (or none), so
    // every part of the memo is both reused and replaced.
    /// Caller, operation, region, address (index into `ips`), user
    /// agent, decisions, error.
    type Case<'a> = (
        Option<&'a crate::auth::Identity>,
        &'a str,
        &'a str,
        usize,
        Option<&'a str>,
        &'a [AuthzRecord],
        Option<(&'a str, Option<&'a str>)>,
    );
    let cases: Vec<Case<'_>> = vec![
        (Some(&a), "Encrypt", "us-east-1", 0, None, &k1, None),
        (Some(&a), "Encrypt", "us-east-1", 0, None, &k1, None),
        (Some(&b), "Encrypt", "us-east-1", 0, None, &k1, None),
        (
            Some(&b_other_key),
            "Encrypt",
            "us-east-1",
            0,
            None,
            &k1,
            None,
        ),
        (
            Some(&a_in_china),
            "Encrypt",
            "us-east-1",
            0,
            None,
            &k1,
            None,
        ),
        (Some(&user), "Encrypt", "us-east-1", 0, None, &k1, None),
        (None, "Encrypt", "us-east-1", 0, None, &k1, None),
        (Some(&a), "Decrypt", "us-east-1", 0, None, &k1, None),
        (Some(&a), "Decrypt", "eu-west-1", 0, None, &k1, None),
        (Some(&a), "Decrypt", "eu-west-1", 1, None, &k1, None),
        (Some(&a), "Decrypt", "eu-west-1", 2, None, &k1, None),
        (
            Some(&a),
            "Decrypt",
            "eu-west-1",
            2,
            Some("aws-cli/2"),
            &k1,
            None,
        ),
        (
            Some(&a),
            "Decrypt",
            "eu-west-1",
            2,
            Some("boto3"),
            &k1,
            None,
        ),
        (
            Some(&a),
            "Decrypt",
            "eu-west-1",
            2,
            Some("boto3"),
            &k2,
            None,
        ),
        (
            Some(&a),
            "Decrypt",
            "eu-west-1",
            2,
            Some("boto3"),
            &k1_denied,
            Some(("AccessDeniedException", Some("no"))),
        ),
        (
            Some(&a),
            "Decrypt",
            "eu-west-1",
            2,
            Some("boto3"),
            &k1_denied,
            None,
        ),
        (
            Some(&a),
            "Decrypt",
            "eu-west-1",
            2,
            Some("boto3"),
            &[],
            None,
        ),
        (
            Some(&b),
            "Decrypt",
            "eu-west-1",
            2,
            Some("boto3"),
            &[],
            None,
        ),
        (Some(&a), "Encrypt", "us-east-1", 0, None, &k1, None),
    ];
    let mut memo = Memo::default();
    for (i, (id, op, region, ip, agent, decisions, error)) in cases.into_iter().enumerate() {
        let input = EventInput {
            service: "kms",
            op,
            region,
            source_ip: ips[ip],
            user_agent: agent,
            identity: id,
            request_parameters: br#"{"keyId":"k1"}"#,
            response_elements: &[],
            error,
            request_id: "req-1",
            event_id: Some(*b"00000000-0000-4000-8000-000000000000"),
            decisions,
            now_ms: 1_795_486_163_712,
        };
        let mut through_memo = Vec::new();
        write_event(&mut through_memo, &input, Some(&mut memo));
        let afresh = event(input);
        assert_eq!(
            String::from_utf8(through_memo).unwrap(),
            String::from_utf8(afresh).unwrap(),
            "case {i}"
        );
    }
}

#[test]
fn resources_name_only_kms_keys_with_the_account_of_their_arn() {
    assert_eq!(
        key_arn_account("arn:aws:kms:us-east-1:111122223333:key/1234abcd"),
        Some("111122223333")
    );
    assert_eq!(
        key_arn_account("arn:aws-cn:kms:cn-north-1:444455556666:key/k"),
        Some("444455556666")
    );
    for not_a_key in [
        "arn:aws:kms:us-east-1:111122223333:alias/a",
        "arn:aws:iam::111122223333:root",
        "arn:aws:kms:us-east-1:111122223333",
        "*",
        "",
        "key/k",
    ] {
        assert_eq!(key_arn_account(not_a_key), None, "{not_a_key}");
    }
}

#[test]
fn source_addresses_are_written_as_display_writes_them() {
    for ip in [
        "0.0.0.0",
        "127.0.0.1",
        "10.9.99.100",
        "192.168.100.255",
        "255.255.255.255",
        "::1",
        "2001:db8::8a2e:370:7334",
        "::ffff:10.0.0.1",
    ] {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        let mut out = Vec::new();
        write_ip(&mut out, ip);
        assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
    }
}

fn identity(principal: ferrokms_iam::Principal) -> crate::auth::Identity {
    crate::auth::Identity {
        principal,
        region: ferrokms_types::Region::parse("us-east-1").unwrap(),
        service: "kms".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        session: None,
        signed_headers: Vec::new(),
    }
}

fn record(identity: Option<&crate::auth::Identity>, error: Option<(&str, Option<&str>)>) -> Value {
    record_of(identity, error, &two_decisions())
}

/// Two decisions on two keys: an allow on the first, a denial on the
/// second.
fn two_decisions() -> [ferrokms_kms::authz::AuthzRecord; 2] {
    [
        ferrokms_kms::authz::AuthzRecord {
            action: "kms:Encrypt".into(),
            resource: "arn:aws:kms:us-east-1:444455556666:key/k1".into(),
            allowed: true,
            reason: ferrokms_authz::Reason::Allowed,
            decision: "allow".into(),
            statements: vec!["key policy #0 (A \"quoted\" sid) Allow".into()],
        },
        ferrokms_kms::authz::AuthzRecord {
            action: "kms:ReEncryptTo".into(),
            resource: "arn:aws:kms:us-east-1:444455556666:key/k2".into(),
            allowed: false,
            reason: ferrokms_authz::Reason::NoAllow(ferrokms_authz::PolicySide::Identity),
            decision: "because no identity-based policy allows the kms:ReEncryptTo action".into(),
            statements: vec![],
        },
    ]
}

fn record_of(
    identity: Option<&crate::auth::Identity>,
    error: Option<(&str, Option<&str>)>,
    decisions: &[ferrokms_kms::authz::AuthzRecord],
) -> Value {
    let line = event(EventInput {
        service: "kms",
        op: "ReEncrypt",
        region: "us-east-1",
        source_ip: Some("127.0.0.1".parse().unwrap()),
        user_agent: Some("agent \"x\"\t1"),
        identity,
        request_parameters: br#"{"keyId":"k1"}"#,
        response_elements: &[],
        error,
        request_id: "req-1",
        event_id: None,
        decisions,
        now_ms: 1_795_486_163_712,
    });
    assert!(!line.contains(&b'\n'));
    serde_json::from_slice(&line).unwrap()
}

#[test]
fn a_record_is_one_json_object_in_cloudtrail_shape_for_each_kind_of_caller() {
    use ferrokms_iam::Principal;
    use ferrokms_types::AccountId;
    let account = AccountId::parse("111122223333").unwrap();
    let root = identity(Principal::Root {
        account: account.clone(),
    });
    let r = record(Some(&root), None);
    assert_eq!(
        r["userIdentity"],
        json!({"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root",
               "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE"})
    );
    assert_eq!(r["eventVersion"], "1.08");
    assert_eq!(r["eventTime"], "2026-11-24T02:09:23Z");
    assert_eq!(r["eventSource"], "kms.amazonaws.com");
    assert_eq!(r["eventName"], "ReEncrypt");
    assert_eq!(r["sourceIPAddress"], "127.0.0.1");
    assert_eq!(r["userAgent"], "agent \"x\"\t1");
    assert_eq!(r["requestParameters"], json!({"keyId": "k1"}));
    assert_eq!(r["responseElements"], Value::Null);
    assert_eq!(r["requestID"], "req-1");
    assert_eq!(r["eventID"].as_str().map(str::len), Some(36));
    assert_eq!(r["readOnly"], true);
    assert_eq!(
        r["resources"],
        json!([{"accountId": "444455556666", "type": "AWS::KMS::Key",
                "ARN": "arn:aws:kms:us-east-1:444455556666:key/k1"},
               {"accountId": "444455556666", "type": "AWS::KMS::Key",
                "ARN": "arn:aws:kms:us-east-1:444455556666:key/k2"}])
    );
    // The first decision's resource is the first of `resources`, so the
    // trace leaves it out; the second names its own key.
    assert!(r["ferrokmsAuthorization"][0].get("resource").is_none());
    assert_eq!(
        r["ferrokmsAuthorization"][1]["resource"],
        "arn:aws:kms:us-east-1:444455556666:key/k2"
    );
    assert_eq!(r["recipientAccountId"], "444455556666");
    assert_eq!(r["eventType"], "AwsApiCall");
    assert_eq!(r["managementEvent"], true);
    assert_eq!(r["eventCategory"], "Management");
    assert!(r.get("errorCode").is_none());
    assert_eq!(
        r["ferrokmsAuthorization"][0]["statements"][0],
        "key policy #0 (A \"quoted\" sid) Allow"
    );
    assert_eq!(r["ferrokmsAuthorization"][1]["allowed"], false);
    // A plain allow has no decision text; a denial keeps its reason.
    assert!(r["ferrokmsAuthorization"][0].get("decision").is_none());
    assert_eq!(r["ferrokmsAuthorization"][0]["allowed"], true);
    assert_eq!(
        r["ferrokmsAuthorization"][1]["decision"],
        "because no identity-based policy allows the kms:ReEncryptTo action"
    );

    let user = identity(Principal::User {
        account: account.clone(),
        name: "alice".into(),
        path: "/team/".into(),
        id: "AIDAEXAMPLE".into(),
    });
    let r = record(
        Some(&user),
        Some(("AccessDeniedException", Some("User: x is \"denied\""))),
    );
    assert_eq!(
        r["userIdentity"],
        json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/team/alice",
               "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"})
    );
    assert_eq!(r["errorCode"], "AccessDeniedException");
    assert_eq!(r["errorMessage"], "User: x is \"denied\"");

    let session = identity(Principal::AssumedRole {
        account,
        role_name: "kms-exports-role".into(),
        role_path: "/".into(),
        role_id: "AROAEXAMPLE".into(),
        session_name: "s1".into(),
    });
    let r = record(Some(&session), Some(("ValidationException", None)));
    assert_eq!(
        r["userIdentity"],
        json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:s1",
               "arn": "arn:aws:sts::111122223333:assumed-role/kms-exports-role/s1",
               "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE",
               "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                   "arn": "arn:aws:iam::111122223333:role/kms-exports-role", "accountId": "111122223333",
                   "userName": "kms-exports-role"}, "attributes": {"mfaAuthenticated": "false"}}})
    );
    assert!(r.get("errorMessage").is_none());

    let r = record(None, Some(("UnrecognizedClientException", Some("bad"))));
    assert_eq!(r["userIdentity"], json!({"type": "Unknown"}));
}

/// The trace leaves out a resource equal to the record's first key and
/// a plain "allow"; `AuditRecord::decisions` must give back exactly the
/// decisions the request made, whichever fields were left out.
#[test]
fn the_short_trace_reads_back_as_the_decisions_that_were_made() {
    use ferrokms_kms::authz::AuthzRecord;
    let [allow, deny] = two_decisions();
    let grant_allow = AuthzRecord {
        reason: ferrokms_authz::Reason::AllowedByGrant,
        decision: "allow (grant)".into(),
        ..allow.clone()
    };
    let same_key_denied = AuthzRecord {
        resource: allow.resource.clone(),
        ..deny.clone()
    };
    let not_a_key = AuthzRecord {
        action: "kms:CreateKey".into(),
        resource: "*".into(),
        ..allow.clone()
    };
    let cases: Vec<Vec<AuthzRecord>> = vec![
        vec![allow.clone()],
        vec![allow.clone(), deny.clone()],
        vec![deny.clone(), allow.clone()],
        vec![grant_allow, same_key_denied],
        vec![not_a_key.clone()],
        vec![not_a_key, allow.clone()],
        vec![allow.clone(), allow],
        vec![],
    ];
    for decisions in cases {
        let r = record_of(None, None, &decisions);
        let typed: AuditRecord = serde_json::from_value(r.clone()).unwrap();
        assert_eq!(typed.decisions(), decisions, "{r}");
    }
}

/// A small deterministic generator (xorshift64*), so that a failure
/// names a case that can be replayed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Text that needs every kind of JSON escaping, and text that needs
/// none (ASCII and not).
const ODD: &[&str] = &[
    "plain",
    "with \"quotes\" and \\backslash\\",
    "line\nbreak\r\ttab",
    "\u{0}\u{1}\u{1f}\u{7f}",
    "\u{8}\u{c}",
    "caf\u{e9} \u{2603} \u{1f600}",
    "\u{4e2d}\u{6587}/\u{65e5}\u{672c}",
    "",
    "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64.ubuntu.22 prompt/off command/kms.encrypt",
    "/</script>&amp;",
];

fn generated_identity(g: &mut Gen) -> Option<crate::auth::Identity> {
    use ferrokms_iam::Principal;
    use ferrokms_types::AccountId;
    let account =
        AccountId::parse(g.pick(&["111122223333", "444455556666", "000000000000"])).unwrap();
    let principal = match g.below(4) {
        0 => return None,
        1 => Principal::Root { account },
        2 => Principal::User {
            account,
            name: g.pick(&["alice", "b.o+b=@,-_", ODD[1], ODD[5]]).into(),
            path: g.pick(&["/", "/team/", "/a/b\"c/"]).into(),
            id: g.pick(&["AIDAEXAMPLE", "AIDA\u{e9}"]).into(),
        },
        _ => Principal::AssumedRole {
            account,
            role_name: g.pick(&["kms-exports-role", "r\u{e9}le", ODD[2]]).into(),
            role_path: g.pick(&["/", "/service-role/"]).into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: g.pick(&["s1", "session@example.com", ODD[3]]).into(),
        },
    };
    let mut id = identity(principal);
    id.region =
        ferrokms_types::Region::parse(g.pick(&["us-east-1", "cn-north-1", "us-gov-west-1"]))
            .unwrap();
    id.access_key_id = g.pick(&["AKIAEXAMPLE", "ASIATEMPORARY", ODD[1]]).into();
    Some(id)
}

fn generated_decisions(g: &mut Gen) -> Vec<ferrokms_kms::authz::AuthzRecord> {
    let resources = [
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:444455556666:key/k2",
        "arn:aws-cn:kms:cn-north-1:111122223333:key/k3",
        "arn:aws:kms:us-east-1:111122223333:alias/a",
        "arn:aws:iam::111122223333:user/alice",
        "*",
        "arn:aws:kms:us-east-1:111122223333:key/\u{e9}\"q",
    ];
    (0..g.below(4))
        .map(|_| {
            let allowed = g.below(3) > 0;
            let mut r = ferrokms_kms::authz::AuthzRecord {
                action: g
                    .pick(&["kms:Encrypt", "kms:ReEncryptTo", "iam:CreateUser", ODD[1]])
                    .into(),
                resource: g.pick(&resources).into(),
                allowed,
                reason: ferrokms_authz::Reason::Allowed,
                decision: if allowed {
                    g.pick(&["allow", "allow (grant 0123abcd)"]).into()
                } else {
                    g.pick(&[
                        "because no identity-based policy allows the kms:Encrypt action",
                        "with an explicit deny in a resource-based policy",
                        ODD[2],
                    ])
                    .into()
                },
                statements: (0..g.below(3))
                    .map(|_| {
                        g.pick(&["key policy #0 (Enable IAM User Permissions) Allow", ODD[5]])
                            .to_string()
                    })
                    .collect(),
            };
            r.reason = ferrokms_authz::Reason::from_decision_text(r.allowed, &r.decision);
            r
        })
        .collect()
}

/// The fast writer's bytes (fresh, and through one connection memo kept
/// across the whole sequence) are exactly what serde writes for the typed
/// record made from the same input, and parse back into that record.
#[test]
fn the_fast_writer_writes_the_bytes_serde_writes_for_the_typed_record() {
    let bodies = [
        json!({}),
        json!({"KeyId": "alias/a", "Plaintext": "c2VjcmV0", "EncryptionContext": {"Tenant": "x"}}),
        json!({"KeyId": "k", "NumberOfBytes": 32, "Ratio": 1.5, "DryRun": false, "X": null,
               "GrantTokens": ["t\"1", "\u{e9}"]}),
        json!({"Constraints": {"EncryptionContextSubset": {"A\"q": "line\nbreak\u{1}"}},
               "Operations": ["Encrypt", "Decrypt"], "Nested": [{"InnerKey": [1, {"Deep": true}]}]}),
        json!({"\u{c9}tatKey": "\u{fc}", "Message": "secret", "Tags": [{"TagKey": "a", "TagValue": "b\\c"}]}),
        json!({"UserName": "alice", "Path": "/team/", "PolicyDocument": "{\"Version\":\"2012-10-17\"}"}),
    ];
    let params: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| super::super::request_parameters_json(b, None))
        .collect();
    let responses: Vec<Vec<u8>> = vec![
        Vec::new(),
        super::super::response_elements(
            "CreateKey",
            br#"{"KeyMetadata":{"KeyId":"k","Arn":"arn:aws:kms:us-east-1:111122223333:key/k","Description":"caf\u00e9 \"x\""}}"#,
        ),
        super::super::response_elements(
            "CreateGrant",
            br#"{"GrantId":"g1","GrantToken":"secret"}"#,
        ),
    ];
    let ips: [Option<std::net::IpAddr>; 4] = [
        None,
        Some("127.0.0.1".parse().unwrap()),
        Some("203.0.113.255".parse().unwrap()),
        Some("2001:db8::8a2e:370:7334".parse().unwrap()),
    ];
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut memo = Memo::default();
    for case in 0..3000 {
        let identity = generated_identity(&mut g);
        let decisions = generated_decisions(&mut g);
        let service = g.pick(&["kms", "iam", "sts"]);
        let op = g.pick(&[
            "Encrypt",
            "ReEncrypt",
            "CreateKey",
            "ListKeys",
            "GetCallerIdentity",
            "SimulatePrincipalPolicy",
            "CreateUser",
            ODD[1],
        ]);
        let region = g.pick(&["us-east-1", "eu-west-1", ""]);
        let user_agent = (g.below(3) > 0).then(|| g.pick(ODD));
        let error = match g.below(4) {
            0 => Some(("AccessDeniedException", Some(g.pick(ODD)))),
            1 => Some(("ValidationException", None)),
            _ => None,
        };
        let request_id = g.pick(&["4f8f0b8e-7c2a-4b1e-9d3a-1c2b3d4e5f60", ODD[2]]);
        let event_id = (g.below(2) == 0).then_some(*b"00000000-0000-4000-8000-000000000000");
        let input = EventInput {
            service,
            op,
            region,
            source_ip: ips[g.below(ips.len())],
            user_agent,
            identity: identity.as_ref(),
            request_parameters: &params[g.below(params.len())],
            response_elements: &responses[g.below(responses.len())],
            error,
            request_id,
            event_id,
            decisions: &decisions,
            now_ms: 1_700_000_000_000 + (g.below(100_000_000_000) as i64),
        };
        let mut through_memo = Vec::new();
        write_event(&mut through_memo, &input, Some(&mut memo));
        let mut fresh = Vec::new();
        write_event(&mut fresh, &input, None);
        // A record without its own event id gets a fresh one each time
        // it is written; the typed record takes the one the text has.
        let written_id = |line: &[u8]| -> [u8; 36] {
            let v: Value = serde_json::from_slice(line).unwrap();
            v["eventID"]
                .as_str()
                .unwrap()
                .as_bytes()
                .try_into()
                .unwrap()
        };
        for (how, line) in [("memo", &through_memo), ("fresh", &fresh)] {
            let typed = AuditRecord::from_input(&input, written_id(line));
            let serde_bytes = serde_json::to_vec(&typed).unwrap();
            assert_eq!(
                String::from_utf8_lossy(line),
                String::from_utf8_lossy(&serde_bytes),
                "case {case} ({how})"
            );
            let parsed: AuditRecord = serde_json::from_slice(line).unwrap();
            assert_eq!(parsed, typed, "case {case} ({how})");
        }
    }
}

#[test]
fn encapsulate_and_decapsulate_are_read_only_as_in_cloudtrail() {
    // CloudTrail's Encapsulate example: "readOnly": true, like the other
    // cryptographic operations; management operations are not.
    for op in [
        "Encapsulate",
        "Decapsulate",
        "DeriveSharedSecret",
        "Encrypt",
    ] {
        assert!(read_only(op), "{op}");
    }
    for op in ["CreateKey", "CreateGrant", "ScheduleKeyDeletion"] {
        assert!(!read_only(op), "{op}");
    }
}
