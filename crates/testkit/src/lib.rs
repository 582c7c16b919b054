//! Test support for the workspace's tests, and nothing else: every crate
//! takes it as a dev-dependency only, and it depends on the crates it
//! helps test, never the other way.
//!
//! - [`process`]: a real `ferrokms serve` on a free loopback port, and
//!   one-shot runs of the binary (the CLI's tests).
//! - [`kms`]: an in-memory [`ferrokms_kms::Kms`], callers of every kind
//!   (root, IAM user, role session, with identity-side policies and request
//!   facts), policy documents, keys, one-call Encrypt/Decrypt/DescribeKey,
//!   a KMS on SQLite that restarts, and AWS's error texts;
//!   [`kms::material`]: EXTERNAL keys and importing, rotating, listing and
//!   deleting key material.

// Test support: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

pub mod kms;
pub mod process;
