//! Strings as the string and ARN condition operators see them, and the
//! search for one witness string per non-empty Venn cell of a set of
//! patterns.
//!
//! Every pattern the policy engine matches a string against is a regular
//! language over characters, written here as a sequence of [`Token`]s:
//!
//! * `StringEquals` value `v`: the literal characters of `v` (`*` and `?`
//!   included, as literals);
//! * `StringLike` value `v`: `*` is [`Token::Star`] and `?` is
//!   [`Token::One`], both crossing `:`;
//! * `ArnLike`/`ArnEquals` value `v` (the engine's `ArnPattern`): a pattern
//!   made only of `*` matches everything; otherwise the text is cut at its
//!   first five `:`, each of the first five parts is a glob whose wildcards
//!   do not cross `:`, the parts are joined by a literal `:`, and the sixth
//!   part's wildcards do cross `:` (the resource part may hold colons). A
//!   pattern with fewer than six parts needs a value with exactly as many
//!   parts, which is what the same encoding says (no wildcard of a part may
//!   cross `:`, so the value has exactly the separators written);
//! * an account id: twelve [`Token::Digit`]s (a *shape* that every witness
//!   must also match);
//! * an IAM principal ARN of one account and kind: its literal prefix
//!   (`arn:aws:iam::ACCOUNT:user/`), a path (IAM name characters and `/`)
//!   and a name character last.
//!
//! # The witness search, and why it is complete
//!
//! [`cells`] runs the subset construction of every pattern at once: a
//! state is the tuple of the sets of pattern positions reachable after the
//! characters read so far, and a state's *signature* is which patterns
//! accept there. A breadth-first search over the states reachable from the
//! start records the first (so the shortest) string reaching each
//! signature. Two facts make the search finite and complete:
//!
//! 1. the alphabet can be cut down to the characters written in some
//!    pattern plus one *fresh* character per class of characters the
//!    wildcards and shapes tell apart (`:`, `/`, a digit, another IAM name
//!    character, any other character, each one no pattern writes): a
//!    character that no pattern writes
//!    moves every automaton exactly as any other character of its class,
//!    so replacing it by the class's representative keeps every pattern's
//!    verdict, and every string has a stand-in over the cut alphabet;
//! 2. the states are finitely many (sets of positions of finite patterns),
//!    and the search visits each reachable one; a signature that some
//!    string has is reached by that string's stand-in, so it is found.
//!
//! So the signatures returned are exactly the non-empty cells. The number
//! of states is bounded by `limit`; past it the search gives up with
//! [`TooManyStates`] rather than answer from part of the space.

use std::collections::HashMap;

/// One position of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// Exactly this character.
    Lit(char),
    /// Any one character (`?`); `colon`: `:` included.
    One {
        /// Whether the wildcard may match `:`.
        colon: bool,
    },
    /// Any run of characters, the empty one included (`*`).
    Star {
        /// Whether the wildcard may match `:`.
        colon: bool,
    },
    /// One ASCII digit (account-id shapes).
    Digit,
    /// One IAM name character ([`is_name_char`]) other than `/`.
    Name,
    /// Any run of IAM name characters and `/`, the empty one included.
    NameStar,
}

/// The characters of IAM user, role and federated-user names and paths
/// (`/` separates the path's parts).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c)
}

/// A pattern: the language of its tokens, matched against the whole string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Exactly `text` (`StringEquals`).
    pub fn literal(text: &str) -> Self {
        Pattern {
            tokens: text.chars().map(Token::Lit).collect(),
        }
    }

    /// `text` with `*` and `?` as wildcards (`StringLike`).
    pub fn glob(text: &str) -> Self {
        Pattern {
            tokens: text.chars().map(|c| glob_token(c, true)).collect(),
        }
    }

    /// `text` as the `Arn*` operators and `Resource` read it (see the
    /// module documentation).
    pub fn arn(text: &str) -> Self {
        if !text.is_empty() && text.chars().all(|c| c == '*') {
            return Pattern {
                tokens: vec![Token::Star { colon: true }],
            };
        }
        let mut tokens = Vec::with_capacity(text.len());
        let mut part = 1;
        for c in text.chars() {
            if c == ':' && part < 6 {
                part += 1;
                tokens.push(Token::Lit(':'));
            } else {
                tokens.push(glob_token(c, part == 6));
            }
        }
        Pattern { tokens }
    }

    /// `prefix` then an IAM path and a non-empty name (so not ending in
    /// `/`): the shape of the principal ARNs of one account and kind.
    pub fn iam_name(prefix: &str) -> Self {
        let mut tokens: Vec<Token> = prefix.chars().map(Token::Lit).collect();
        tokens.push(Token::NameStar);
        tokens.push(Token::Name);
        Pattern { tokens }
    }

    /// Twelve digits: the shape of an account id.
    pub fn account_shape() -> Self {
        Pattern {
            tokens: vec![Token::Digit; 12],
        }
    }

    /// The characters the pattern writes.
    fn literals(&self) -> impl Iterator<Item = char> + '_ {
        self.tokens.iter().filter_map(|t| match t {
            Token::Lit(c) => Some(*c),
            _ => None,
        })
    }

    /// Words of the position bitset: positions `0..=tokens.len()`.
    fn words(&self) -> usize {
        self.tokens.len() / 64 + 1
    }

    fn start(&self) -> Vec<u64> {
        let mut set = vec![0u64; self.words()];
        set[0] = 1;
        self.close(&mut set);
        set
    }

    /// Adds the positions a `*` may skip to.
    fn close(&self, set: &mut [u64]) {
        for (i, t) in self.tokens.iter().enumerate() {
            if matches!(t, Token::Star { .. } | Token::NameStar) && has(set, i) {
                put(set, i + 1);
            }
        }
    }

    fn step(&self, set: &[u64], c: char) -> Vec<u64> {
        let mut next = vec![0u64; set.len()];
        for (w, &word) in set.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(t) = self.tokens.get(i) else {
                    continue;
                };
                match *t {
                    Token::Lit(x) if x == c => put(&mut next, i + 1),
                    Token::One { colon } if colon || c != ':' => put(&mut next, i + 1),
                    Token::Star { colon } if colon || c != ':' => put(&mut next, i),
                    Token::Digit if c.is_ascii_digit() => put(&mut next, i + 1),
                    Token::Name if is_name_char(c) && c != '/' => put(&mut next, i + 1),
                    Token::NameStar if is_name_char(c) => put(&mut next, i),
                    _ => {}
                }
            }
        }
        self.close(&mut next);
        next
    }

    fn accepts(&self, set: &[u64]) -> bool {
        has(set, self.tokens.len())
    }

    /// Whether the pattern matches `text` (tests compare it with the engine).
    pub fn is_match(&self, text: &str) -> bool {
        let mut set = self.start();
        for c in text.chars() {
            set = self.step(&set, c);
            if set.iter().all(|w| *w == 0) {
                return false;
            }
        }
        self.accepts(&set)
    }
}

fn has(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn put(set: &mut [u64], i: usize) {
    if let Some(w) = set.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn glob_token(c: char, colon: bool) -> Token {
    match c {
        '*' => Token::Star { colon },
        '?' => Token::One { colon },
        c => Token::Lit(c),
    }
}

/// The search visited more states than it was allowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyStates(pub usize);

/// One non-empty cell: which patterns match (in input order) and the
/// shortest string found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// `signature[i]`: pattern `i` matches the witness.
    pub signature: Vec<bool>,
    /// A string of the cell.
    pub witness: String,
}

/// Characters tried first as the fresh representatives: readable ones.
const FRESH: &str = "zqxjkvwyabcdefghilmnoprstu_-.0123456789~!#";

/// Every non-empty Venn cell of `patterns` among the strings that every
/// `shape` pattern matches, one shortest witness each. `lowercase`: only
/// strings without upper-case letters are wanted (for the `IgnoreCase`
/// operators, which compare lower-cased text). See the module
/// documentation for why the answer is complete.
pub fn cells(
    patterns: &[Pattern],
    shapes: &[Pattern],
    lowercase: bool,
    limit: usize,
) -> Result<Vec<Cell>, TooManyStates> {
    let all: Vec<&Pattern> = patterns.iter().chain(shapes).collect();
    let mut alphabet: Vec<char> = Vec::new();
    for p in &all {
        for c in p.literals() {
            if !alphabet.contains(&c) {
                alphabet.push(c);
            }
        }
    }
    // One fresh character per class the wildcards tell apart.
    let written = alphabet.clone();
    let fresh = |want: &dyn Fn(char) -> bool| {
        FRESH
            .chars()
            .chain(['é'])
            .find(|c| !written.contains(c) && want(*c) && !(lowercase && c.is_uppercase()))
    };
    for c in [
        Some(':').filter(|c| !written.contains(c)),
        fresh(&|c| c.is_ascii_digit()),
        fresh(&|c| !c.is_ascii_digit() && is_name_char(c) && c != '/'),
        Some('/').filter(|c| !written.contains(c)),
        fresh(&|c| !is_name_char(c) && c != ':'),
    ]
    .into_iter()
    .flatten()
    {
        alphabet.push(c);
    }
    if lowercase {
        alphabet.retain(|c| !c.is_uppercase());
    }
    alphabet.sort_by_key(|c| FRESH.find(*c).unwrap_or(usize::MAX));

    // A state is every pattern's position set, laid end to end.
    let offsets: Vec<usize> = all
        .iter()
        .scan(0, |acc, p| {
            let o = *acc;
            *acc += p.words();
            Some(o)
        })
        .collect();
    let part = |i: usize| -> std::ops::Range<usize> { offsets[i]..offsets[i] + all[i].words() };
    let start: Vec<u64> = all.iter().flat_map(|p| p.start()).collect();
    let mut seen: HashMap<Vec<u64>, usize, foldhash::fast::RandomState> =
        HashMap::with_hasher(foldhash::fast::RandomState::default());
    // (parent, character) per state, for the witness.
    let mut nodes: Vec<(usize, char)> = vec![(usize::MAX, '\0')];
    let mut queue: Vec<Vec<u64>> = vec![start.clone()];
    seen.insert(start, 0);
    let mut out: Vec<Cell> = Vec::new();
    let mut head = 0;
    let np = patterns.len();
    while head < queue.len() {
        let state = queue[head].clone();
        let id = head;
        head += 1;
        let shaped = (np..all.len()).all(|i| all[i].accepts(&state[part(i)]));
        if shaped {
            let signature: Vec<bool> = (0..np).map(|i| all[i].accepts(&state[part(i)])).collect();
            if !out.iter().any(|c| c.signature == signature) {
                out.push(Cell {
                    signature,
                    witness: spell(&nodes, id),
                });
            }
        }
        for &c in &alphabet {
            let mut next: Vec<u64> = Vec::with_capacity(state.len());
            let mut dead_shape = false;
            for (i, p) in all.iter().enumerate() {
                let s = p.step(&state[part(i)], c);
                if i >= np && s.iter().all(|w| *w == 0) {
                    dead_shape = true;
                    break;
                }
                next.extend(s);
            }
            // A shape that can no longer match ends the branch.
            if dead_shape || seen.contains_key(&next) {
                continue;
            }
            if seen.len() >= limit {
                return Err(TooManyStates(limit));
            }
            seen.insert(next.clone(), queue.len());
            nodes.push((id, c));
            queue.push(next);
        }
    }
    Ok(out)
}

fn spell(nodes: &[(usize, char)], mut id: usize) -> String {
    let mut chars = Vec::new();
    while id != 0 {
        let (parent, c) = nodes[id];
        chars.push(c);
        id = parent;
    }
    chars.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigs(cells: &[Cell]) -> Vec<Vec<bool>> {
        let mut s: Vec<Vec<bool>> = cells.iter().map(|c| c.signature.clone()).collect();
        s.sort();
        s
    }

    #[test]
    fn each_witness_lies_in_its_cell() {
        let pats = vec![
            Pattern::glob("a*"),
            Pattern::glob("*b"),
            Pattern::literal("ab"),
            Pattern::glob("a?b"),
        ];
        let cells = cells(&pats, &[], false, 10_000).expect("small");
        for c in &cells {
            for (p, want) in pats.iter().zip(&c.signature) {
                assert_eq!(p.is_match(&c.witness), *want, "{c:?}");
            }
        }
        // Every combination that some string realises, and no other:
        // a*∧*b∧ab (ab), a*∧*b∧a?b (axb), a*∧*b alone (abb? no: a*b with
        // 3+ chars not a?b: "azzb"), a* alone, *b alone, none.
        let want = vec![
            vec![false, false, false, false],
            vec![false, true, false, false],
            vec![true, false, false, false],
            vec![true, true, false, false],
            vec![true, true, false, true],
            vec![true, true, true, false],
        ];
        assert_eq!(sigs(&cells), want);
    }

    #[test]
    fn a_cell_no_string_has_is_not_reported() {
        // "a" and "a*" together: a string matching "a" also matches "a*".
        let pats = vec![Pattern::literal("a"), Pattern::glob("a*")];
        let got = sigs(&cells(&pats, &[], false, 1000).expect("small"));
        assert!(!got.contains(&vec![true, false]));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn the_fresh_character_stands_for_every_unwritten_one() {
        // A string avoiding both literals needs a character neither writes.
        let pats = vec![Pattern::literal("a"), Pattern::literal("b")];
        let got = cells(&pats, &[], false, 1000).expect("small");
        assert_eq!(got.len(), 3, "{got:?}");
        let none = got
            .iter()
            .find(|c| c.signature == vec![false, false])
            .expect("the empty cell");
        assert_eq!(none.witness, "", "the empty string is in no literal");
    }

    #[test]
    fn arn_wildcards_stop_at_colons_before_the_resource() {
        let p = Pattern::arn("arn:aws:iam::*:root");
        assert!(p.is_match("arn:aws:iam::111122223333:root"));
        assert!(!p.is_match("arn:aws:iam::1:2:root"));
        let q = Pattern::arn("arn:aws:kms:*:*:key/*");
        assert!(q.is_match("arn:aws:kms:us-east-1:1:key/a:b"));
        assert!(!Pattern::arn("a:*").is_match("a:b:c"));
        assert!(Pattern::arn("*").is_match("anything:at:all"));
        // A glob crosses colons where an ARN pattern does not.
        let cells = cells(
            &[Pattern::glob("a:*:c"), Pattern::arn("a:*:c")],
            &[],
            false,
            10_000,
        )
        .expect("small");
        let only_glob = cells
            .iter()
            .find(|c| c.signature == vec![true, false])
            .expect("a string with a colon in the middle part");
        assert!(only_glob.witness.matches(':').count() > 2);
    }

    #[test]
    fn account_shaped_witnesses_are_twelve_digits() {
        let pats = vec![Pattern::literal("111122223333"), Pattern::glob("1111*")];
        let got = cells(&pats, &[Pattern::account_shape()], false, 100_000).expect("small");
        assert_eq!(got.len(), 3, "{got:?}");
        for c in &got {
            assert_eq!(c.witness.len(), 12);
            assert!(c.witness.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn iam_name_shapes_give_one_principal_per_cell() {
        let pats = vec![
            Pattern::arn("arn:aws:iam::*:role/r*"),
            Pattern::literal("arn:aws:iam::111111111111:role/r"),
        ];
        let got = cells(
            &pats,
            &[Pattern::iam_name("arn:aws:iam::111111111111:role/")],
            false,
            100_000,
        )
        .expect("small");
        // r itself, another r..., and a name not starting with r.
        assert_eq!(got.len(), 3, "{got:?}");
        for c in &got {
            let name = c
                .witness
                .strip_prefix("arn:aws:iam::111111111111:role/")
                .expect("shape");
            assert!(!name.is_empty() && name.chars().all(is_name_char), "{c:?}");
            assert!(!name.ends_with('/'), "{c:?}");
        }
    }

    #[test]
    fn lowercase_witnesses_have_no_capitals() {
        let pats = vec![Pattern::literal("abc")];
        for c in cells(&pats, &[], true, 1000).expect("small") {
            assert!(!c.witness.chars().any(char::is_uppercase));
        }
    }

    #[test]
    fn the_search_gives_up_past_its_bound() {
        let pats: Vec<Pattern> = (0..12).map(|i| Pattern::glob(&format!("*{i}*x"))).collect();
        assert_eq!(cells(&pats, &[], false, 50), Err(TooManyStates(50)));
    }
}
