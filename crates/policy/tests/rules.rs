//! Table-driven tests, each named after the documented IAM rule it checks.
//!
//! The rules come from the IAM JSON policy reference (elements, condition operators,
//! multivalued context keys, policy variables, evaluation logic, cross-account evaluation)
//! and the KMS developer guide's key-policy pages.

#[path = "rules/support.rs"]
mod support;

#[path = "rules/conditions.rs"]
mod conditions;
#[path = "rules/evaluation.rs"]
mod evaluation;
#[path = "rules/matching.rs"]
mod matching;
#[path = "rules/parsing.rs"]
mod parsing;
#[path = "rules/variables.rs"]
mod variables;
