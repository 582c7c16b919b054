//! Statement matching primitives: action, resource and principal.

pub(crate) mod arn;
pub(crate) mod glob;
mod principal;

pub(crate) use principal::principal_matches;
pub use principal::PrincipalMatch;

use crate::ids::Action;
use crate::model::{ActionElement, ResourceElement, ResourceMatcher};
use crate::value::Context;

/// `Action` matches when any pattern matches; `NotAction` when none does. Both sides are
/// compared lowercased: action names are case-insensitive in IAM.
pub(crate) fn action_matches(elem: &ActionElement, action: &Action) -> bool {
    let any = elem
        .patterns
        .iter()
        .any(|p| p.glob.is_match(action.lower()));
    any != elem.negated
}

/// `Resource` matches when any pattern matches; `NotResource` when none does. Case-sensitive.
/// A pattern whose policy variables have no value matches nothing.
pub(crate) fn resource_matches(elem: &ResourceElement, resource: &str, ctx: &Context) -> bool {
    let mut subject = glob::Subject::new(resource, ctx.scratch());
    let any = elem.patterns.iter().any(|p| match &p.matcher {
        ResourceMatcher::Static(pat) => pat.matches(&mut subject),
        ResourceMatcher::Dynamic(t) => t
            .resolve_segs(ctx)
            .is_some_and(|segs| arn::ArnPattern::from_segs(&segs).matches(&mut subject)),
    });
    any != elem.negated
}
