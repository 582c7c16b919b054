//! `*` / `?` wildcard matching, compiled once at parse time.
//!
//! The pattern is split at its stars into fixed-width pieces. The first piece must sit at the
//! start of the text, the last at the end, and each middle piece is taken at its leftmost
//! occurrence: taking the leftmost occurrence never loses a match, so there is no
//! backtracking and no recursion. The cost is at most O(text × pattern) even for hostile
//! patterns, and linear for ordinary ones (pieces without `?` use `str::find`).

/// One token of a wildcard pattern. `Lit` characters are compared exactly (callers that want
/// case-insensitive matching lowercase both sides first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    One,
    Star,
}

/// Turns wildcard text into tokens: `*` and `?` are wildcards, everything else literal.
pub(crate) fn tokens(text: &str) -> impl Iterator<Item = Tok> + '_ {
    text.chars().map(|c| match c {
        '*' => Tok::Star,
        '?' => Tok::One,
        c => Tok::Lit(c),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PTok {
    Lit(char),
    One,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    toks: Vec<PTok>,
    /// The piece as a string when it has no `?`, so it can be found with `str::find`.
    literal: Option<String>,
}

impl Piece {
    fn new(toks: Vec<PTok>) -> Self {
        let literal = toks
            .iter()
            .map(|t| match t {
                PTok::Lit(c) => Some(*c),
                PTok::One => None,
            })
            .collect::<Option<String>>();
        Piece { toks, literal }
    }

    /// If the piece matches `text` starting at byte `at` (without passing `end`), the byte
    /// offset just after the match.
    fn match_at(&self, text: &str, at: usize, end: usize) -> Option<usize> {
        let window = text.get(at..end)?;
        let mut chars = window.char_indices();
        let mut consumed = 0;
        for t in &self.toks {
            let (i, c) = chars.next()?;
            if let PTok::Lit(l) = t {
                if *l != c {
                    return None;
                }
            }
            consumed = i + c.len_utf8();
        }
        Some(at + consumed)
    }

    /// Leftmost match inside `text[start..end]`: (match start, match end).
    fn find(&self, text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
        let window = text.get(start..end)?;
        if let Some(lit) = &self.literal {
            let i = window.find(lit.as_str())?;
            return Some((start + i, start + i + lit.len()));
        }
        for (i, _) in window.char_indices() {
            if let Some(e) = self.match_at(text, start + i, end) {
                return Some((start + i, e));
            }
        }
        None
    }
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// Only stars: matches everything.
    Any,
    /// No wildcards.
    Exact(String),
    /// `literal*`.
    Prefix(String),
    General {
        pieces: Vec<Piece>,
        lead_star: bool,
        trail_star: bool,
    },
}

impl Glob {
    /// Compiles wildcard text (`*`, `?`).
    pub(crate) fn new(text: &str) -> Self {
        Self::from_tokens(tokens(text))
    }

    /// Compiles a token stream (used when policy variables contribute literal characters).
    pub(crate) fn from_tokens(toks: impl IntoIterator<Item = Tok>) -> Self {
        let mut pieces: Vec<Vec<PTok>> = vec![Vec::new()];
        let mut stars = 0usize;
        let mut lead_star = false;
        let mut trail_star = false;
        let mut any_tok = false;
        for t in toks {
            match t {
                Tok::Star => {
                    if !any_tok {
                        lead_star = true;
                    }
                    stars += 1;
                    trail_star = true;
                    if pieces.last().is_some_and(|p| !p.is_empty()) {
                        pieces.push(Vec::new());
                    }
                }
                Tok::Lit(c) => {
                    trail_star = false;
                    if let Some(p) = pieces.last_mut() {
                        p.push(PTok::Lit(c));
                    }
                }
                Tok::One => {
                    trail_star = false;
                    if let Some(p) = pieces.last_mut() {
                        p.push(PTok::One);
                    }
                }
            }
            any_tok = true;
        }
        pieces.retain(|p| !p.is_empty());
        if stars > 0 && pieces.is_empty() {
            return Glob::Any;
        }
        let pieces: Vec<Piece> = pieces.into_iter().map(Piece::new).collect();
        if stars == 0 {
            match pieces.first() {
                None => return Glob::Exact(String::new()),
                Some(p) => {
                    if let (1, Some(l)) = (pieces.len(), &p.literal) {
                        return Glob::Exact(l.clone());
                    }
                }
            }
        }
        if stars == 1 && !lead_star && trail_star && pieces.len() == 1 {
            if let Some(l) = &pieces[0].literal {
                return Glob::Prefix(l.clone());
            }
        }
        Glob::General {
            pieces,
            lead_star,
            trail_star,
        }
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(s) => s == text,
            Glob::Prefix(p) => text.starts_with(p.as_str()),
            Glob::General {
                pieces,
                lead_star,
                trail_star,
            } => general_match(pieces, *lead_star, *trail_star, text),
        }
    }
}

fn general_match(pieces: &[Piece], lead_star: bool, trail_star: bool, text: &str) -> bool {
    let (mut lo, mut hi) = (0, pieces.len());
    let mut start = 0;
    let mut end = text.len();
    if !lead_star {
        let Some(first) = pieces.first() else {
            return text.is_empty();
        };
        match first.match_at(text, 0, end) {
            Some(e) => start = e,
            None => return false,
        }
        lo = 1;
        if !trail_star && pieces.len() == 1 {
            // No star at all: the single piece must cover the whole text.
            return start == text.len();
        }
    }
    if !trail_star && hi > lo {
        let last = &pieces[hi - 1];
        // Every token matches exactly one character, so the suffix is the last n characters.
        let n = last.toks.len();
        let Some((suffix_start, _)) = text[start..].char_indices().rev().nth(n - 1) else {
            return false;
        };
        let suffix_start = start + suffix_start;
        if last.match_at(text, suffix_start, end) != Some(end) {
            return false;
        }
        end = suffix_start;
        hi -= 1;
    }
    for piece in &pieces[lo..hi] {
        match piece.find(text, start, end) {
            Some((_, e)) => start = e,
            None => return false,
        }
    }
    start <= end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deliberately naive recursive matcher to cross-check the compiled one.
    fn naive(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => naive(&p[1..], t) || (!t.is_empty() && naive(p, &t[1..])),
            Some('?') => !t.is_empty() && naive(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && naive(&p[1..], &t[1..]),
        }
    }

    #[test]
    fn agrees_with_naive_matcher() {
        let pats = [
            "", "*", "**", "a", "a*", "*a", "*a*", "a*b", "a?c", "?", "??", "*?", "?*", "a*b*c",
            "*ab*ab*", "a**b", "*é?", "k?s:*", "x*y?z",
        ];
        let texts = [
            "", "a", "b", "ab", "abc", "acb", "aXc", "aab", "abab", "ababab", "é", "éx", "kms:x",
            "xyyz", "xyaz", "axbxc", "ba",
        ];
        for p in pats {
            for t in texts {
                let pc: Vec<char> = p.chars().collect();
                let tc: Vec<char> = t.chars().collect();
                assert_eq!(
                    Glob::new(p).is_match(t),
                    naive(&pc, &tc),
                    "pattern {p:?} text {t:?}"
                );
            }
        }
    }

    #[test]
    fn literal_tokens_from_variables_are_not_wildcards() {
        let g = Glob::from_tokens([Tok::Lit('a'), Tok::Lit('*')]);
        assert!(g.is_match("a*"));
        assert!(!g.is_match("ab"));
    }
}
