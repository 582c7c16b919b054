//! ValidatePolicy's checks of AWS's own that `policy lint` lacks:
//! REDUNDANT_ACTION, INVALID_GLOBAL_CONDITION_KEY and the PASS_ROLE_*
//! security warnings, read from the document's nodes (`span.rs`).

use ferrokms_kms::lint;

use super::{FindingType, Out};
use crate::span::{Node, NodeKind, PathElement};

/// Case-insensitive `*` / `?` matching of a pattern against a text.
pub(super) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The KMS actions a `kms:` pattern matches, as a set of bits (one per
/// entry of `lint::KMS_ACTIONS`, which has fewer than 64); `None` for
/// another service's pattern.
pub(super) fn kms_mask(pattern: &str) -> Option<u64> {
    let actions = lint::expand_action(pattern)?;
    Some(
        lint::KMS_ACTIONS
            .iter()
            .enumerate()
            .filter(|(_, a)| actions.contains(a))
            .fold(0, |m, (i, _)| m | (1u64 << i)),
    )
}

/// One action of a statement, read once for [`covers`].
pub(super) struct ActionPattern<'a> {
    pub(super) text: &'a str,
    pub(super) kms: Option<u64>,
}

/// Whether action pattern `wide` allows everything `narrow` does. For two
/// KMS patterns, by the actions each matches; otherwise `wide` must match
/// `narrow` read as literal text (`iam:*` covers `iam:Get*`).
pub(super) fn covers(wide: &ActionPattern<'_>, narrow: &ActionPattern<'_>) -> bool {
    if let (Some(w), Some(n)) = (wide.kms, narrow.kms) {
        return n != 0 && n & !w == 0;
    }
    glob(wide.text.as_bytes(), narrow.text.as_bytes())
}

/// REDUNDANT_ACTION: an action of a statement's `Action` that another of
/// its actions already covers (of two equal ones, the second). Quadratic
/// in the statement's actions, each comparison a bit test or a glob of two
/// short strings; the document's size bounds both (`MAX_POLICY_CHARS`).
pub(super) fn redundant_actions(out: &mut Out<'_>, base: &[PathElement], st: &Node) {
    let Some(actions) = st.get("Action") else {
        return;
    };
    let list = actions.strings();
    let patterns: Vec<ActionPattern<'_>> = list
        .iter()
        .map(|(_, n)| {
            let text = n.as_str().unwrap_or_default();
            ActionPattern {
                text,
                kms: kms_mask(text),
            }
        })
        .collect();
    for (i, a) in patterns.iter().enumerate() {
        let by = patterns
            .iter()
            .enumerate()
            .find(|(j, b)| *j != i && covers(b, a) && !(*j > i && covers(a, b)));
        if let Some((_, b)) = by {
            let (a, b) = (a.text, b.text);
            let mut path = base.to_vec();
            path.push(PathElement::Value("Action".into()));
            if let Some(idx) = list[i].0 {
                path.push(PathElement::Index(idx));
            }
            out.push(
                "REDUNDANT_ACTION",
                FindingType::Suggestion,
                format!("The {a} action is redundant because the {b} action allows the same access. We recommend that you remove the {a} action."),
                path,
            );
        }
    }
}

/// AWS's global condition keys (IAM User Guide, "AWS global condition
/// context keys"), lowercased; a trailing `/` is a family.
const GLOBAL_KEYS: &[&str] = &[
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "aws:currenttime",
    "aws:ec2instancesourceprivateipv4",
    "aws:ec2instancesourcevpc",
    "aws:epochtime",
    "aws:federatedprovider",
    "aws:multifactorauthage",
    "aws:multifactorauthpresent",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalisawsservice",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:principaltag/",
    "aws:principaltype",
    "aws:referer",
    "aws:requestedregion",
    "aws:requesttag/",
    "aws:resourceaccount",
    "aws:resourceorgid",
    "aws:resourceorgpaths",
    "aws:resourcetag/",
    "aws:securetransport",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceidentity",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpcarn",
    "aws:sourcevpce",
    "aws:tagkeys",
    "aws:tokenissuetime",
    "aws:useragent",
    "aws:userid",
    "aws:username",
    "aws:viaawsservice",
    "aws:vpcsourceip",
];

/// Levenshtein distance of two short lowercased keys.
pub(super) fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// INVALID_GLOBAL_CONDITION_KEY: an `aws:` key that is not a global key
/// but a near miss of one (at most 2 edits; for a family, of its prefix).
/// Keys far from every known one are left alone: AWS adds global keys,
/// and a key this list lacks must not fail a policy.
pub(super) fn global_condition_keys(out: &mut Out<'_>, base: &[PathElement], st: &Node) {
    let Some(NodeKind::Object(ops)) = st.get("Condition").map(|c| &c.kind) else {
        return;
    };
    for op in ops {
        let NodeKind::Object(keys) = &op.value.kind else {
            continue;
        };
        for k in keys {
            let lower = k.key.to_ascii_lowercase();
            if !lower.starts_with("aws:") || lower.len() > 128 {
                continue;
            }
            let known = GLOBAL_KEYS.iter().any(|g| match g.strip_suffix('/') {
                Some(_) => lower.starts_with(g) && lower.len() > g.len(),
                None => lower == *g,
            });
            if known {
                continue;
            }
            let near = GLOBAL_KEYS.iter().find(|g| {
                let (head, g) = match g.strip_suffix('/') {
                    Some(family) => (lower.split('/').next().unwrap_or(""), family),
                    None => (lower.as_str(), **g),
                };
                distance(head, g) <= 2
            });
            if let Some(g) = near {
                let mut path = base.to_vec();
                path.push(PathElement::Value("Condition".into()));
                path.push(PathElement::Value(op.key.clone()));
                path.push(PathElement::Key(k.key.clone()));
                out.push(
                    "INVALID_GLOBAL_CONDITION_KEY",
                    FindingType::Error,
                    format!("The condition key {} does not exist (did you mean {g}?): no request has it, so the condition can never match or never restricts. Use a valid condition key.", k.key),
                    path,
                );
            }
        }
    }
}

/// The PASS_ROLE_* security warnings of an identity policy's Allow
/// statement that passes roles with `*` (or NotResource) as its resource.
pub(super) fn pass_role(out: &mut Out<'_>, base: &[PathElement], st: &Node) {
    if st.get("Effect").and_then(Node::as_str) != Some("Allow") {
        return;
    }
    let pass = b"iam:PassRole";
    let action_form = if let Some(a) = st.get("Action") {
        let list = a.strings();
        if list.iter().any(|(_, n)| {
            n.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("iam:PassRole"))
        }) {
            Some("")
        } else if list
            .iter()
            .any(|(_, n)| n.as_str().is_some_and(|s| glob(s.as_bytes(), pass)))
        {
            Some("_STAR_IN_ACTION_AND")
        } else {
            None
        }
    } else if let Some(a) = st.get("NotAction") {
        let excluded = a
            .strings()
            .iter()
            .any(|(_, n)| n.as_str().is_some_and(|s| glob(s.as_bytes(), pass)));
        (!excluded).then_some("_NOT_ACTION_AND")
    } else {
        None
    };
    let Some(action_form) = action_form else {
        return;
    };
    let mut path = base.to_vec();
    let resource_form = if let Some(r) = st.get("Resource") {
        let star = r
            .strings()
            .into_iter()
            .find(|(_, n)| n.as_str() == Some("*"));
        let Some((idx, _)) = star else {
            return;
        };
        path.push(PathElement::Value("Resource".into()));
        if let Some(idx) = idx {
            path.push(PathElement::Index(idx));
        }
        "_STAR_IN_RESOURCE"
    } else if st.get("NotResource").is_some() {
        path.push(PathElement::Value("NotResource".into()));
        "_NOT_RESOURCE"
    } else {
        return;
    };
    let code = match (action_form, resource_form) {
        ("", r) => format!("PASS_ROLE_WITH{r}"),
        (a, r) => format!("PASS_ROLE_WITH{a}{r}"),
    };
    let what = if resource_form == "_NOT_RESOURCE" {
        "the NotResource element"
    } else {
        "a wildcard (*) in the resource"
    };
    out.push(
        &code,
        FindingType::SecurityWarning,
        format!("Using the iam:PassRole action with {what} can be overly permissive because it allows iam:PassRole permissions on multiple resources. We recommend that you specify resource ARNs or add the iam:PassedToService condition key to your statement."),
        path,
    );
}
