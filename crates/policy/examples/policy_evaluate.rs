//! A minimal stand-in for `ferrokms policy evaluate`, showing how thin the CLI wrapper is.
//!
//! ```text
//! cargo run -p ferrokms-policy --example policy_evaluate -- \
//!     --policy resource=key.json --policy identity=alice.json \
//!     --principal arn:aws:iam::111122223333:user/alice --action kms:Sign \
//!     --resource arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab \
//!     --context aws:SourceIp=10.0.0.1 [--context-file ctx.json] [--kms] [--json]
//! ```

use ferrokms_policy::cli::{evaluate_cli, EvaluateInput, PolicySource};
use ferrokms_policy::CombineMode;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(allowed) => {
            if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let mut input = EvaluateInput::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--policy" => {
                let arg = value()?;
                let (kind, file) = PolicySource::split_arg(&arg)?;
                input
                    .policies
                    .push(PolicySource::new(kind, file, std::fs::read(file)?));
            }
            "--principal" => input.principal = value()?,
            "--role-arn" => input.role_arn = Some(value()?),
            "--action" => input.action = value()?,
            "--resource" => input.resource = value()?,
            "--context" => input.context.push(value()?),
            "--context-file" => input.context_json = Some(std::fs::read_to_string(value()?)?),
            "--kms" => input.mode = CombineMode::ResourcePolicyRequired,
            "--json" => json = true,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let report = evaluate_cli(&input)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        print!("{}", report.human);
    }
    Ok(report.allowed)
}
