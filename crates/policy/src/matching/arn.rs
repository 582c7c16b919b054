//! ARN pattern matching for `Resource`/`NotResource` and the `Arn*` condition operators.
//!
//! IAM matches an ARN part by part: `arn`, partition, service, region and account are each
//! matched on their own, so a wildcard never spans a `:` in them; the sixth part (the resource,
//! which may itself contain colons) is matched as one string. Matching is case-sensitive.

use super::glob::{Glob, Tok};

/// A compiled ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// A pattern made only of wildcards (`*`) matches any value, including the `*` resource of
    /// actions that have none.
    Whole(Glob),
    /// A pattern with fewer than six parts (not a full ARN): the value must have the same
    /// number of parts and each must match, so wildcards still never span a `:`.
    Short(Vec<Glob>),
    /// Six parts, each matched separately.
    Parts(Box<[Glob; 6]>),
}

impl ArnPattern {
    pub(crate) fn new(text: &str) -> Self {
        Self::from_tokens(super::glob::tokens(text).collect())
    }

    pub(crate) fn from_tokens(toks: Vec<Tok>) -> Self {
        let mut parts: Vec<Vec<Tok>> = vec![Vec::new()];
        for t in &toks {
            if *t == Tok::Lit(':') && parts.len() < 6 {
                parts.push(Vec::new());
            } else if let Some(p) = parts.last_mut() {
                p.push(*t);
            }
        }
        if toks.iter().all(|t| matches!(t, Tok::Star)) && !toks.is_empty() {
            return ArnPattern::Whole(Glob::Any);
        }
        if parts.len() < 6 {
            return ArnPattern::Short(parts.into_iter().map(Glob::from_tokens).collect());
        }
        let globs: Vec<Glob> = parts.into_iter().map(Glob::from_tokens).collect();
        match <[Glob; 6]>::try_from(globs) {
            Ok(arr) => ArnPattern::Parts(Box::new(arr)),
            // Unreachable by construction (exactly six parts), but fall back safely.
            Err(_) => ArnPattern::Whole(Glob::from_tokens(toks)),
        }
    }

    pub(crate) fn is_match(&self, value: &str) -> bool {
        match self {
            ArnPattern::Whole(g) => g.is_match(value),
            ArnPattern::Short(globs) => {
                let parts: Vec<&str> = value.splitn(6, ':').collect();
                parts.len() == globs.len() && globs.iter().zip(parts).all(|(g, p)| g.is_match(p))
            }
            ArnPattern::Parts(globs) => {
                let mut n = 0;
                for (g, part) in globs.iter().zip(value.splitn(6, ':')) {
                    if !g.is_match(part) {
                        return false;
                    }
                    n += 1;
                }
                n == 6
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_do_not_cross_colons_before_the_resource() {
        let p = ArnPattern::new("arn:aws:kms:*:111122223333:key/*");
        assert!(p.is_match("arn:aws:kms:us-east-1:111122223333:key/abc"));
        assert!(p.is_match("arn:aws:kms::111122223333:key/abc"));
        assert!(!p.is_match("arn:aws:kms:us-east-1:444455556666:key/abc"));
        let p = ArnPattern::new("arn:aws:kms:*");
        // Not six parts: never spans colons, so it cannot match a full ARN.
        assert!(!p.is_match("arn:aws:kms:us-east-1:1:key/x"));
        assert!(p.is_match("arn:aws:kms:x"));
        assert!(ArnPattern::new("*").is_match("*"));
        assert!(ArnPattern::new("*").is_match("arn:aws:kms:us-east-1:1:key/x"));
        let p = ArnPattern::new("arn:aws:*:us-east-1:111122223333:*");
        assert!(!p.is_match("arn:aws:kms:us-east-1:111122223333"));
    }

    #[test]
    fn resource_part_may_contain_colons() {
        let p = ArnPattern::new("arn:aws:logs:*:*:log-group:app:*");
        assert!(p.is_match("arn:aws:logs:eu-west-1:1:log-group:app:log-stream:x"));
    }
}
