//! Any bytes: parsing must return a policy or an error, never panic; a parsed policy must
//! serialise, re-parse to an equal policy, and evaluate and explain without panicking.
#![no_main]

use ferrokms_policy::{
    evaluate, explain, Action, Context, ContextValue, ParseOptions, Policy, PolicyInput,
    PolicyKind, Request, RequestPrincipal,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in PolicyKind::ALL {
        let opts = ParseOptions::for_kind(kind);
        let Ok(policy) = Policy::parse_bytes(data, &opts) else {
            continue;
        };
        let text = policy.to_json_string();
        let again = Policy::parse(&text, &opts).expect("serialised policy must re-parse");
        assert_eq!(again, policy, "parse -> serialise -> parse must be the identity");

        let (Ok(principal), Ok(action)) = (
            RequestPrincipal::from_arn("arn:aws:sts::111122223333:assumed-role/Admin/s"),
            Action::parse("kms:Decrypt"),
        ) else {
            return;
        };
        let request = Request::new(
            principal,
            action,
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .with_context(
            Context::new()
                .with("aws:username", "alice")
                .with("aws:SourceIp", "10.1.2.3")
                .with_multi("aws:TagKeys", vec![ContextValue::from("a"), ContextValue::from("b")]),
        );
        let eval = evaluate(&request, &[PolicyInput::new("fuzz", kind, &policy)]);
        let _ = explain::render_text(&request, &eval);
        let _ = explain::to_json(&request, &eval);
    }
});
