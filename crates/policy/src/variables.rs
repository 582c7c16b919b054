//! Policy variables: `${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, `${*}`...
//!
//! Variables exist only in `Version: 2012-10-17` documents; in older (or version-less)
//! documents `${...}` is plain text, which the parser handles by never building a template.
//! A variable's value is inserted as literal text: a `*` inside a user name is not a wildcard.
//! `${*}`, `${?}` and `${$}` are the escapes for a literal `*`, `?` and `$`.
//! A variable with no value and no default leaves the whole pattern unresolved; callers treat
//! that as "this policy value matches nothing", which is what IAM documents.

use crate::matching::glob::Seg;
use crate::value::Context;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Policy text; may contain `*`/`?` wildcards when used as a pattern.
    Text(String),
    /// A literal character from `${*}`, `${?}`, `${$}`.
    Escaped(char),
    /// A variable, with its key lowercased for lookup (key names are case-insensitive).
    Var {
        key_lower: String,
        default: Option<String>,
    },
}

/// Text containing at least one `${...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// Parses `${...}` occurrences. Returns `Ok(None)` when the text contains none, so callers can
/// keep the fast precompiled path.
pub(crate) fn parse(text: &str) -> Result<Option<Template>, &'static str> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if i > 0 {
            pieces.push(Piece::Text(rest[..i].to_string()));
        }
        let after = &rest[i + 2..];
        let close = after.find('}').ok_or("'${' without a closing '}'")?;
        let inner = &after[..close];
        rest = &after[close + 1..];
        match inner {
            "*" => pieces.push(Piece::Escaped('*')),
            "?" => pieces.push(Piece::Escaped('?')),
            "$" => pieces.push(Piece::Escaped('$')),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => {
                        let d = d.trim();
                        let quoted = d
                            .strip_prefix('\'')
                            .and_then(|d| d.strip_suffix('\''))
                            .ok_or("a default value must be in single quotes")?;
                        (k.trim(), Some(quoted.to_string()))
                    }
                    None => (inner.trim(), None),
                };
                if key.is_empty() {
                    return Err("empty variable name");
                }
                if key.contains(char::is_whitespace) || key.contains("${") {
                    return Err("invalid variable name");
                }
                pieces.push(Piece::Var {
                    key_lower: key.to_lowercase(),
                    default,
                });
            }
        }
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(Some(Template { pieces }))
}

impl Template {
    /// The (lowercased) context keys this template reads.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var { key_lower, .. } => Some(key_lower.as_str()),
            _ => None,
        })
    }

    fn value<'c>(
        key_lower: &str,
        default: &'c Option<String>,
        ctx: &'c Context,
    ) -> Option<std::borrow::Cow<'c, str>> {
        ctx.variable_value(key_lower)
            .or_else(|| default.as_deref().map(std::borrow::Cow::Borrowed))
    }

    /// Substitutes variables into plain text (for equality operators). `None` if a variable
    /// has no value and no default.
    pub(crate) fn resolve_text(&self, ctx: &Context) -> Option<String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Escaped(c) => out.push(*c),
                Piece::Var { key_lower, default } => {
                    out.push_str(&Self::value(key_lower, default, ctx)?);
                }
            }
        }
        Some(out)
    }

    /// Substitutes variables into a wildcard pattern, in parts: the policy's own text keeps
    /// its wildcards, substituted values and escapes are literal. Values are borrowed, not
    /// copied.
    pub(crate) fn resolve_segs<'a>(&'a self, ctx: &'a Context) -> Option<Vec<Seg<'a>>> {
        let mut out = Vec::with_capacity(self.pieces.len());
        for p in &self.pieces {
            out.push(match p {
                Piece::Text(t) => Seg::Wild(t),
                Piece::Escaped(c) => Seg::Lit(std::borrow::Cow::Borrowed(match c {
                    '*' => "*",
                    '?' => "?",
                    _ => "$",
                })),
                Piece::Var { key_lower, default } => {
                    Seg::Lit(Self::value(key_lower, default, ctx)?)
                }
            });
        }
        Some(out)
    }

    /// The names of the variables used, for error messages and explanations.
    pub(crate) fn has_variable_before_resource(&self) -> bool {
        // Count ':' in the literal text that precedes the first variable.
        let mut colons = 0;
        for p in &self.pieces {
            match p {
                Piece::Text(t) => colons += t.matches(':').count(),
                Piece::Escaped(_) => {}
                Piece::Var { .. } => return colons < 5,
            }
            if colons >= 5 {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_escapes() {
        let t = parse("home/${aws:username, 'nobody'}/${*}").ok().flatten();
        let Some(t) = t else {
            panic!("expected a template")
        };
        let ctx = Context::new().with("AWS:UserName", "bob");
        assert_eq!(t.resolve_text(&ctx).as_deref(), Some("home/bob/*"));
        assert_eq!(
            t.resolve_text(&Context::new()).as_deref(),
            Some("home/nobody/*")
        );
    }

    #[test]
    fn unresolved_variable_without_default_resolves_to_none() {
        let Ok(Some(t)) = parse("${aws:username}") else {
            panic!()
        };
        assert_eq!(t.resolve_text(&Context::new()), None);
    }

    #[test]
    fn malformed_variables_are_errors() {
        assert!(parse("${aws:username").is_err());
        assert!(parse("${}").is_err());
        assert!(parse("${a, nodefaultquotes}").is_err());
        assert_eq!(parse("no variables $ here"), Ok(None));
    }
}
