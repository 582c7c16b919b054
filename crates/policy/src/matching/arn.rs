//! ARN pattern matching for `Resource`/`NotResource` and the `Arn*` condition operators.
//!
//! IAM matches an ARN part by part: `arn`, partition, service, region and account are each
//! matched on their own, so a wildcard never spans a `:` in them; the sixth part (the resource,
//! which may itself contain colons) is matched as one string. Matching is case-sensitive.

use std::borrow::Cow;

#[cfg(test)]
use super::glob::Scratch;
use super::glob::{Builder, Glob, Seg, Subject};

/// A compiled ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern<'a> {
    /// A pattern made only of wildcards (`*`) matches any value, including the `*` resource of
    /// actions that have none.
    Whole(Glob<'a>),
    /// A pattern with fewer than six parts (not a full ARN): the value must have the same
    /// number of parts and each must match, so wildcards still never span a `:`.
    Short(Vec<Glob<'a>>),
    /// Six parts, each matched separately.
    Parts(Box<[Glob<'a>; 6]>),
}

impl ArnPattern<'static> {
    pub(crate) fn new(text: &str) -> Self {
        ArnPattern::from_segs(&[Seg::Wild(text)]).into_owned()
    }
}

impl<'a> ArnPattern<'a> {
    fn into_owned(self) -> ArnPattern<'static> {
        match self {
            ArnPattern::Whole(g) => ArnPattern::Whole(g.into_owned()),
            ArnPattern::Short(v) => {
                ArnPattern::Short(v.into_iter().map(Glob::into_owned).collect())
            }
            ArnPattern::Parts(p) => {
                let [a, b, c, d, e, f] = *p;
                ArnPattern::Parts(Box::new([
                    a.into_owned(),
                    b.into_owned(),
                    c.into_owned(),
                    d.into_owned(),
                    e.into_owned(),
                    f.into_owned(),
                ]))
            }
        }
    }

    /// Compiles pattern text in parts. A `:` splits parts wherever it comes from (a policy
    /// variable's value included), up to the sixth part.
    pub(crate) fn from_segs(segs: &[Seg<'a>]) -> Self {
        let mut parts: Vec<Builder<'a>> = vec![Builder::default()];
        let mut only_stars = true;
        let mut empty = true;
        for seg in segs {
            match seg {
                Seg::Wild(t) => {
                    for c in t.chars() {
                        empty = false;
                        only_stars &= c == '*';
                        if c == ':' && parts.len() < 6 {
                            parts.push(Builder::default());
                        } else if let Some(p) = parts.last_mut() {
                            p.wild_char(c);
                        }
                    }
                }
                Seg::Lit(t) => {
                    if t.is_empty() {
                        continue;
                    }
                    empty = false;
                    only_stars = false;
                    match t {
                        Cow::Borrowed(b) => split_lit(&mut parts, b, Cow::Borrowed),
                        Cow::Owned(o) => split_lit(&mut parts, o, |x| Cow::Owned(x.to_string())),
                    }
                }
            }
        }
        if only_stars && !empty {
            return ArnPattern::Whole(Glob::Any);
        }
        let globs: Vec<Glob<'a>> = parts.into_iter().map(Builder::finish).collect();
        if globs.len() < 6 {
            return ArnPattern::Short(globs);
        }
        match <[Glob<'a>; 6]>::try_from(globs) {
            Ok(arr) => ArnPattern::Parts(Box::new(arr)),
            // Unreachable by construction (exactly six parts), but fall back safely: a
            // pattern that matches nothing.
            Err(_) => ArnPattern::Short(Vec::new()),
        }
    }

    #[cfg(test)]
    pub(crate) fn is_match(&self, value: &str) -> bool {
        let scratch = Scratch::new();
        let mut s = Subject::new(value, &scratch);
        self.matches(&mut s)
    }

    /// Matches the whole subject, part by part.
    pub(crate) fn matches(&self, s: &mut Subject<'_>) -> bool {
        let value = s.text();
        match self {
            ArnPattern::Whole(g) => g.matches(s, 0, value.len()),
            ArnPattern::Short(globs) => {
                let mut parts = part_bounds(value);
                for g in globs {
                    match parts.next() {
                        Some((a, b)) if g.matches(s, a, b) => {}
                        _ => return false,
                    }
                }
                parts.next().is_none()
            }
            ArnPattern::Parts(globs) => {
                let mut n = 0;
                for (g, (a, b)) in globs.iter().zip(part_bounds(value)) {
                    if !g.matches(s, a, b) {
                        return false;
                    }
                    n += 1;
                }
                n == 6
            }
        }
    }
}

/// Literal text into the parts: its `:` split parts too, up to the sixth.
fn split_lit<'a, 's>(
    parts: &mut Vec<Builder<'a>>,
    text: &'s str,
    mk: impl Fn(&'s str) -> Cow<'a, str>,
) {
    let mut rest = text;
    while parts.len() < 6 {
        let Some(i) = rest.find(':') else { break };
        if let Some(p) = parts.last_mut() {
            p.lit(mk(&rest[..i]));
        }
        parts.push(Builder::default());
        rest = &rest[i + 1..];
    }
    if let Some(p) = parts.last_mut() {
        p.lit(mk(rest));
    }
}

/// The byte ranges of `value.splitn(6, ':')`.
fn part_bounds(value: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    value.splitn(6, ':').map(move |p| {
        let a = p.as_ptr() as usize - value.as_ptr() as usize;
        (a, a + p.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: a wildcard match by dynamic programming.
    fn glob_ref(p: &[char], t: &[char]) -> bool {
        let mut prev = vec![false; t.len() + 1];
        prev[0] = true;
        for c in p {
            let mut cur = vec![false; t.len() + 1];
            for j in 0..=t.len() {
                cur[j] = match c {
                    '*' => prev[j] || (j > 0 && cur[j - 1]),
                    '?' => j > 0 && prev[j - 1],
                    c => j > 0 && prev[j - 1] && t[j - 1] == *c,
                };
            }
            prev = cur;
        }
        prev[t.len()]
    }

    /// The reference: IAM's part-by-part ARN match, spelled out.
    fn arn_ref(pattern: &str, value: &str) -> bool {
        if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
            return true;
        }
        let pp: Vec<&str> = pattern.splitn(6, ':').collect();
        let vp: Vec<&str> = value.splitn(6, ':').collect();
        pp.len() == vp.len()
            && pp.iter().zip(&vp).all(|(p, v)| {
                glob_ref(
                    &p.chars().collect::<Vec<_>>(),
                    &v.chars().collect::<Vec<_>>(),
                )
            })
    }

    fn arnish(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => Just('a'),
                2 => Just('b'),
                4 => Just(':'),
                3 => Just('*'),
                3 => Just('?'),
            ],
            0..max,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn agrees_with_the_part_by_part_reference(p in arnish(16), v in arnish(24)) {
            // Values are text: their `*` and `?` are plain characters.
            prop_assert_eq!(ArnPattern::new(&p).is_match(&v), arn_ref(&p, &v), "{} {}", p, v);
        }
    }

    #[test]
    fn colons_from_variables_split_parts_like_written_ones() {
        let lit = |s: &'static str| Seg::Lit(std::borrow::Cow::Borrowed(s));
        let p = ArnPattern::from_segs(&[
            Seg::Wild("arn:aws:kms:"),
            lit("us-east-1:1"),
            Seg::Wild(":key/*"),
        ]);
        assert_eq!(p, ArnPattern::new("arn:aws:kms:us-east-1:1:key/*"));
        let p = ArnPattern::from_segs(&[Seg::Wild("arn:aws:s3:::"), lit("b/*?")]);
        assert!(p.is_match("arn:aws:s3:::b/*?"));
        assert!(!p.is_match("arn:aws:s3:::b/xy"));
    }

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
