//! Rough cost of the hot path: `cargo run --release --example verify_timing -p ferrokms-sigv4`.

use std::time::{Instant, SystemTime};

use ferrokms_sigv4::{parse, sign_request, verify, Credentials, HttpRequest, Signer, Verifier};

fn main() {
    let now = SystemTime::now();
    let body = br#"{"KeyId":"alias/bench","Plaintext":"aGVsbG8gd29ybGQ="}"#;
    let base = [
        ("Host", "kms.us-east-1.amazonaws.com"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "TrentService.Encrypt"),
    ];
    let creds = Credentials {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: None,
    };
    let unsigned = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &base,
        body,
    };
    let signed = sign_request(&unsigned, &creds, "us-east-1", "kms", now);
    let mut headers: Vec<(&str, &str)> = base.to_vec();
    headers.extend(signed.iter());
    let req = HttpRequest {
        headers: &headers,
        ..unsigned
    };

    let n = 200_000u32;
    let verifier = Verifier::default();
    let t = Instant::now();
    for _ in 0..n {
        let p = parse(&req).expect("parse");
        verifier
            .verify(&req, &p, creds.secret_access_key, now, &["kms"])
            .expect("verify");
    }
    println!("parse+verify, warm cache: {:?}/req", t.elapsed() / n);

    let t = Instant::now();
    for _ in 0..n / 4 {
        let p = parse(&req).expect("parse");
        verify(&req, &p, creds.secret_access_key, now, &["kms"]).expect("verify");
    }
    println!("parse+verify, no cache:   {:?}/req", t.elapsed() / (n / 4));

    let signer = Signer::default();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(signer.sign(&unsigned, &creds, "us-east-1", "kms", now));
    }
    println!("sign, warm cache:         {:?}/req", t.elapsed() / n);
}
