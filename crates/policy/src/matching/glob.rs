//! `*` / `?` wildcard matching, compiled once at parse time, with a cost bounded by the text
//! and the pattern rather than by their product.
//!
//! A pattern is split at its stars into fixed-width *pieces*: runs of literal text and of `?`.
//! The first piece must sit at the start of the text, the last at the end, and each middle
//! piece is taken at its leftmost occurrence after the one before: taking the leftmost
//! occurrence never loses a match, so there is no backtracking and no recursion. What finding
//! a middle piece costs, for a window of `n` bytes:
//!
//! * literal text, with or without `?` at its ends (`*abc*`, `*??abc?*`): one substring search
//!   (`memchr::memmem`, linear: O(n + piece)) and a count of characters; once a text has been
//!   scanned several times over (many patterns tried on one long value), a literal of up to
//!   64 characters is found in its index instead, as below, in O(characters × n/64);
//! * `?` between literal runs (`*a?b*`): the text's bit-parallel index ([`index`]): for each
//!   character, the set of positions holding it, so the piece's starts are the AND of those
//!   sets shifted by the characters' offsets: O(literal characters × n/64) word operations,
//!   stopped at the first word with a start left. A literal run longer than 64 characters (a
//!   policy variable's value, say) counts as one set, found by substring search and the run's
//!   period in O(n + run).
//!
//! A text is matched through a [`Subject`], which takes the request's [`Scratch`] for as long
//! as it lives: every pattern tried on one value (a condition's list of patterns, say) shares
//! one index of it, and later values of the same text (the next statement) find it there
//! again. Anchored pieces (first and last) are compared in place: O(piece). A text shorter in
//! bytes than the characters a pattern needs is refused at once.

mod index;

pub(crate) use index::Scratch;
pub(crate) use index::Subject;

use std::borrow::Cow;

/// Literal runs longer than this (in characters) are found as a whole in the index rather
/// than character by character.
const LONG_RUN: usize = 64;

#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts work in tests (bytes compared or scanned, words combined); nothing otherwise.
#[inline(always)]
pub(crate) fn step(_n: usize) {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + _n as u64));
}

/// The work counted on this thread since the last call.
#[cfg(test)]
pub(crate) fn take_steps() -> u64 {
    STEPS.with(|s| s.replace(0))
}

/// One token of a wildcard pattern (tests build patterns from tokens).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    One,
    Star,
}

/// Pattern text in parts: `Wild` text has `*` and `?` as wildcards; `Lit` text is literal
/// (a policy variable's value, or an escape such as `${*}`).
#[derive(Debug, Clone)]
pub(crate) enum Seg<'a> {
    Wild(&'a str),
    Lit(Cow<'a, str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom<'a> {
    /// Literal text and its length in characters.
    Lit(Cow<'a, str>, usize),
    /// That many `?`.
    Skip(usize),
}

/// What the index combines to find a piece: the set of a character or of a long run, at an
/// offset (in characters) from the piece's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    Char(usize, char),
    /// The literal atom at this index of the piece.
    Run(usize, usize),
}

impl Term {
    #[inline(always)]
    fn offset(&self) -> usize {
        match *self {
            Term::Char(off, _) | Term::Run(off, _) => off,
        }
    }
}

/// A run of fixed-width tokens between stars: `chars` characters wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    atoms: Vec<Atom<'a>>,
    chars: usize,
    /// `?` before the first literal run, and after the last.
    lead_skip: usize,
    trail_skip: usize,
    /// `atoms[core.0..core.1]` starts and ends with a literal run (empty if none).
    core: (usize, usize),
    core_chars: usize,
    /// For a core with `?` inside: the index's terms, offsets from the core's start.
    terms: Vec<Term>,
    /// Whether every term is a Latin-1 character.
    latin_terms: bool,
}

impl<'a> Piece<'a> {
    fn new(atoms: Vec<Atom<'a>>, chars: usize) -> Self {
        let lead_skip = match atoms.first() {
            Some(Atom::Skip(n)) => *n,
            _ => 0,
        };
        let lo = usize::from(lead_skip > 0);
        let (trail_skip, hi) = match atoms.last() {
            Some(Atom::Skip(n)) if atoms.len() > lo => (*n, atoms.len() - 1),
            _ => (0, atoms.len()),
        };
        let (core, core_chars) = if lo < hi {
            ((lo, hi), chars - lead_skip - trail_skip)
        } else {
            ((0, 0), 0)
        };
        let mut terms = Vec::new();
        if core.1 - core.0 > 1 {
            let mut off = 0;
            for (i, a) in atoms.iter().enumerate().take(core.1).skip(core.0) {
                match a {
                    Atom::Lit(_, n) if *n > LONG_RUN => terms.push(Term::Run(off, i)),
                    Atom::Lit(l, _) => {
                        terms.extend(l.chars().enumerate().map(|(j, c)| Term::Char(off + j, c)));
                    }
                    Atom::Skip(_) => {}
                }
                off += match a {
                    Atom::Lit(_, n) | Atom::Skip(n) => *n,
                };
            }
        }
        let latin_terms = terms
            .iter()
            .all(|t| matches!(t, Term::Char(_, c) if (*c as u32) < 256));
        Piece {
            atoms,
            chars,
            lead_skip,
            trail_skip,
            core,
            core_chars,
            terms,
            latin_terms,
        }
    }

    fn core(&self) -> &[Atom<'a>] {
        &self.atoms[self.core.0..self.core.1]
    }

    /// The piece as one string when it has no `?`.
    fn literal(&self) -> Option<&Cow<'a, str>> {
        match self.atoms.as_slice() {
            [Atom::Lit(l, _)] => Some(l),
            _ => None,
        }
    }

    /// If the piece matches `text` starting at byte `at` without passing `end`, the byte
    /// offset just after it. O(piece).
    fn match_at(&self, text: &[u8], at: usize, end: usize) -> Option<usize> {
        let mut pos = at;
        for a in &self.atoms {
            match a {
                Atom::Lit(l, _) => {
                    step(l.len());
                    if !text.get(pos..end)?.starts_with(l.as_bytes()) {
                        return None;
                    }
                    pos += l.len();
                }
                Atom::Skip(n) => pos = fwd_chars(text, pos, end, *n)?,
            }
        }
        Some(pos)
    }

    /// Leftmost match inside the subject's `start..end`: (match start, match end).
    fn find(&self, s: &mut Subject<'_>, start: usize, end: usize) -> Option<(usize, usize)> {
        let b = s.text().as_bytes();
        // The core can start no earlier than `lead_skip` characters in.
        let from = if self.lead_skip == 0 {
            start
        } else {
            fwd_chars(b, start, end, self.lead_skip)?
        };
        let (q, qe) = match self.core() {
            [] => return Some((start, from)),
            [Atom::Lit(l, n)] => {
                if *n <= LONG_RUN && s.prefers_index(end - from) {
                    s.find_literal(l, *n, from, end)?
                } else {
                    let window = b.get(from..end)?;
                    let found = memchr::memmem::find(window, l.as_bytes());
                    let scanned = found.map_or(window.len(), |i| i + l.len());
                    step(scanned);
                    s.scanned(scanned);
                    let i = found?;
                    (from + i, from + i + l.len())
                }
            }
            _ => s.find_core(self, from, end)?,
        };
        if self.lead_skip == 0 && self.trail_skip == 0 {
            return Some((q, qe));
        }
        let b = s.text().as_bytes();
        // A later occurrence would leave fewer characters after it, so if these are missing
        // there is no match at all.
        let e = fwd_chars(b, qe, end, self.trail_skip)?;
        let st = back_chars(b, q, start, self.lead_skip)?;
        Some((st, e))
    }
}

/// The byte length of the character starting with `lead`.
#[inline]
fn utf8_width(lead: u8) -> usize {
    match lead {
        0..=0x7f => 1,
        0x80..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

/// The byte offset `n` characters after `pos`, if they fit before `end`.
fn fwd_chars(b: &[u8], mut pos: usize, end: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return (pos <= end).then_some(pos);
    }
    step(n);
    for _ in 0..n {
        if pos >= end {
            return None;
        }
        pos += utf8_width(b[pos]);
    }
    (pos <= end).then_some(pos)
}

/// The byte offset `n` characters before `pos`, if they fit after `lo`.
fn back_chars(b: &[u8], mut pos: usize, lo: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(pos);
    }
    step(n);
    for _ in 0..n {
        if pos <= lo {
            return None;
        }
        pos -= 1;
        while pos > lo && b[pos] & 0xc0 == 0x80 {
            pos -= 1;
        }
    }
    Some(pos)
}

/// Compiles wildcard text piece by piece.
#[derive(Default)]
pub(crate) struct Builder<'a> {
    pieces: Vec<Piece<'a>>,
    cur: Vec<Atom<'a>>,
    cur_chars: usize,
    stars: usize,
    lead_star: bool,
    trail_star: bool,
    any: bool,
}

impl<'a> Builder<'a> {
    fn close(&mut self) {
        if !self.cur.is_empty() {
            let atoms = std::mem::take(&mut self.cur);
            self.pieces.push(Piece::new(atoms, self.cur_chars));
            self.cur_chars = 0;
        }
    }

    fn star(&mut self) {
        if !self.any {
            self.lead_star = true;
        }
        self.any = true;
        self.stars += 1;
        self.trail_star = true;
        self.close();
    }

    fn one(&mut self) {
        self.any = true;
        self.trail_star = false;
        self.cur_chars += 1;
        match self.cur.last_mut() {
            Some(Atom::Skip(n)) => *n += 1,
            _ => self.cur.push(Atom::Skip(1)),
        }
    }

    /// Literal text. A long run is kept as it is (borrowed, not copied) in an atom of its
    /// own, so the index can recognise it in every pattern that holds it.
    pub(crate) fn lit(&mut self, s: Cow<'a, str>) {
        if s.is_empty() {
            return;
        }
        self.any = true;
        self.trail_star = false;
        let n = s.chars().count();
        self.cur_chars += n;
        match self.cur.last_mut() {
            Some(Atom::Lit(l, c)) if n <= LONG_RUN && *c <= LONG_RUN => {
                l.to_mut().push_str(&s);
                *c += n;
            }
            _ => self.cur.push(Atom::Lit(s, n)),
        }
    }

    /// One character of wildcard text.
    pub(crate) fn wild_char(&mut self, c: char) {
        match c {
            '*' => self.star(),
            '?' => self.one(),
            c => self.lit(Cow::Owned(c.to_string())),
        }
    }

    /// Wildcard text.
    pub(crate) fn wild(&mut self, s: &'a str) {
        let mut rest = s;
        while let Some(i) = rest.find(['*', '?']) {
            self.lit(Cow::Borrowed(&rest[..i]));
            self.wild_char(char::from(rest.as_bytes()[i]));
            rest = &rest[i + 1..];
        }
        self.lit(Cow::Borrowed(rest));
    }

    pub(crate) fn finish(mut self) -> Glob<'a> {
        self.close();
        let mut pieces = self.pieces;
        if self.stars == 0 {
            return match pieces.pop() {
                None => Glob::Exact(Cow::Borrowed("")),
                Some(p) => match p.literal() {
                    Some(l) => Glob::Exact(l.clone()),
                    None => Glob::Fixed(p),
                },
            };
        }
        if pieces.is_empty() {
            return Glob::Any;
        }
        if self.stars == 1 && !self.lead_star && self.trail_star && pieces.len() == 1 {
            if let Some(l) = pieces[0].literal() {
                return Glob::Prefix(l.clone());
            }
        }
        let min_chars = pieces.iter().map(|p| p.chars).sum();
        let tail = if self.trail_star { None } else { pieces.pop() };
        let head = if self.lead_star || pieces.is_empty() {
            None
        } else {
            Some(pieces.remove(0))
        };
        Glob::General(Box::new(General {
            head,
            middle: pieces,
            tail,
            min_chars,
        }))
    }
}

/// A pattern with stars that is not a plain prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct General<'a> {
    /// The piece before the first star, anchored at the start.
    head: Option<Piece<'a>>,
    /// The pieces between stars, in order.
    middle: Vec<Piece<'a>>,
    /// The piece after the last star, anchored at the end.
    tail: Option<Piece<'a>>,
    /// Characters the text needs at least.
    min_chars: usize,
}

/// A compiled wildcard pattern; `'a` is what policy-variable values are borrowed from
/// (`'static` for the patterns a policy holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob<'a> {
    /// Only stars: matches everything.
    Any,
    /// No wildcards.
    Exact(Cow<'a, str>),
    /// `literal*`.
    Prefix(Cow<'a, str>),
    /// No star but some `?`: the piece must cover the whole text.
    Fixed(Piece<'a>),
    General(Box<General<'a>>),
}

impl Glob<'static> {
    /// Compiles wildcard text (`*`, `?`).
    pub(crate) fn new(text: &str) -> Self {
        let mut b = Builder::default();
        b.wild(text);
        b.finish().into_owned()
    }
}

impl<'a> Glob<'a> {
    /// Compiles pattern text in parts (policy variables contribute literal text).
    pub(crate) fn from_segs(segs: &[Seg<'a>]) -> Self {
        let mut b = Builder::default();
        for s in segs {
            match s {
                Seg::Wild(t) => b.wild(t),
                Seg::Lit(t) => b.lit(t.clone()),
            }
        }
        b.finish()
    }

    /// Compiles a token stream.
    #[cfg(test)]
    pub(crate) fn from_tokens(toks: impl IntoIterator<Item = Tok>) -> Glob<'static> {
        let mut b = Builder::default();
        for t in toks {
            match t {
                Tok::Lit(c) => b.lit(Cow::Owned(c.to_string())),
                Tok::One => b.one(),
                Tok::Star => b.star(),
            }
        }
        b.finish().into_owned()
    }

    /// The same pattern owning all its text.
    pub(crate) fn into_owned(self) -> Glob<'static> {
        fn own(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        fn piece(p: Piece<'_>) -> Piece<'static> {
            Piece {
                atoms: p
                    .atoms
                    .into_iter()
                    .map(|a| match a {
                        Atom::Lit(l, n) => Atom::Lit(own(l), n),
                        Atom::Skip(n) => Atom::Skip(n),
                    })
                    .collect(),
                chars: p.chars,
                lead_skip: p.lead_skip,
                trail_skip: p.trail_skip,
                core: p.core,
                core_chars: p.core_chars,
                terms: p.terms,
                latin_terms: p.latin_terms,
            }
        }
        match self {
            Glob::Any => Glob::Any,
            Glob::Exact(s) => Glob::Exact(own(s)),
            Glob::Prefix(s) => Glob::Prefix(own(s)),
            Glob::Fixed(p) => Glob::Fixed(piece(p)),
            Glob::General(g) => Glob::General(Box::new(General {
                head: g.head.map(piece),
                middle: g.middle.into_iter().map(piece).collect(),
                tail: g.tail.map(piece),
                min_chars: g.min_chars,
            })),
        }
    }

    /// Matches a short text on its own (action names).
    pub(crate) fn is_match(&self, text: &str) -> bool {
        let scratch = Scratch::new();
        let mut s = Subject::new(text, &scratch);
        self.matches(&mut s, 0, text.len())
    }

    /// Whether the pattern matches the subject's bytes `start..end` (character boundaries).
    pub(crate) fn matches(&self, s: &mut Subject<'_>, start: usize, end: usize) -> bool {
        let text = s.text();
        if start > end || end > text.len() {
            return false;
        }
        match self {
            Glob::Any => true,
            Glob::Exact(x) => text.as_bytes()[start..end] == *x.as_bytes(),
            Glob::Prefix(p) => text.as_bytes()[start..end].starts_with(p.as_bytes()),
            Glob::Fixed(p) => {
                end - start >= p.chars && p.match_at(text.as_bytes(), start, end) == Some(end)
            }
            Glob::General(g) => g.matches(s, start, end),
        }
    }
}

impl General<'_> {
    fn matches(&self, s: &mut Subject<'_>, mut start: usize, mut end: usize) -> bool {
        // Every character is at least one byte.
        if end - start < self.min_chars {
            return false;
        }
        let b = s.text().as_bytes();
        if let Some(h) = &self.head {
            match h.match_at(b, start, end) {
                Some(e) => start = e,
                None => return false,
            }
        }
        if let Some(t) = &self.tail {
            // Every token is one character wide: the tail is the last `chars` characters.
            let Some(ts) = back_chars(b, end, start, t.chars) else {
                return false;
            };
            if t.match_at(b, ts, end) != Some(end) {
                return false;
            }
            end = ts;
        }
        for piece in &self.middle {
            match piece.find(s, start, end) {
                Some((_, e)) => start = e,
                None => return false,
            }
        }
        start <= end
    }
}

#[cfg(test)]
mod tests;
