//! A bit-parallel index of a text, for pieces with `?` between literal runs.
//!
//! For a character `c`, `bits(c)` has bit `i` set when the text's `i`-th character is `c`.
//! A piece such as `a?b` starts at position `s` exactly when bit `s` of `bits(a)` and bit
//! `s + 2` of `bits(b)` are set, so its leftmost start is the lowest bit of
//! `bits(a) & (bits(b) >> 2)`: one AND per literal character per 64 positions, computed a
//! word at a time and stopped at the first word with a bit left (or at the first empty
//! result, for the rest of that word).
//!
//! A literal run longer than [`LONG_RUN`](super::LONG_RUN) characters gets a set of its own:
//! the positions where the whole run starts, found by substring search (`memchr::memmem`);
//! where occurrences overlap (a periodic run in a periodic text), the ones that follow are
//! found by comparing up to a run's length of text at a time, so the set costs O(text + run)
//! in searches and comparisons whatever the input.
//!
//! A text's character sets are built together, in one pass, when a piece first needs them;
//! a long run's set when a piece first holds it. They live as long as the [`Scratch`] that
//! holds them: the request's context. Every pattern of the request tried on the same text
//! shares them, and a run found in several patterns (a policy variable's value) is searched
//! for once per text.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::{step, Atom, Piece, Term};

/// Texts indexed by one request at most; an older index is dropped to make room.
const MAX_INDEXES: usize = 256;

/// Terms of a piece resolved without allocating.
const INLINE_TERMS: usize = 8;

/// The indexes of the texts a request searched, and what is known of long runs; one per
/// request context.
#[derive(Default)]
pub(crate) struct Scratch {
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    indexes: Vec<TextIndex>,
    /// The smallest period (in bytes) of long runs seen so far.
    periods: Memo<usize>,
}

impl Slot {
    /// The position of the index of `text`, built now if there is none.
    fn index_for(&mut self, text: &str) -> usize {
        let addr = text.as_ptr() as usize;
        let found = self
            .indexes
            .iter()
            .position(|ix| ix.addr == addr && ix.text.len() == text.len())
            .filter(|&i| {
                step(text.len());
                *self.indexes[i].text == *text
            })
            .or_else(|| {
                self.indexes.iter().position(|ix| {
                    ix.text.len() == text.len() && {
                        step(text.len());
                        *ix.text == *text
                    }
                })
            });
        if let Some(i) = found {
            return i;
        }
        if self.indexes.len() >= MAX_INDEXES {
            self.indexes.remove(0);
        }
        self.indexes.push(TextIndex::new(text));
        self.indexes.len() - 1
    }
}

impl Scratch {
    pub(crate) const fn new() -> Self {
        Scratch {
            slot: Mutex::new(Slot {
                indexes: Vec::new(),
                periods: Memo(Vec::new()),
            }),
        }
    }
}

impl Clone for Scratch {
    /// A copy starts empty: this is a cache.
    fn clone(&self) -> Self {
        Scratch::new()
    }
}

impl PartialEq for Scratch {
    /// A cache never makes two contexts differ.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scratch")
    }
}

/// Values computed for literal runs, found again by the run's address (a pattern the policy
/// holds, a value the context holds) or, failing that, by its text. The text is always
/// compared, so an address reused for other text is never mistaken for the old one.
struct Memo<T>(Vec<(usize, Box<str>, T)>);

impl<T> Default for Memo<T> {
    fn default() -> Self {
        Memo(Vec::new())
    }
}

impl<T> Memo<T> {
    fn find(&self, run: &str) -> Option<&T> {
        let addr = run.as_ptr() as usize;
        let same = |t: &str| {
            step(t.len());
            t == run
        };
        self.0
            .iter()
            .find(|(a, t, _)| *a == addr && same(t))
            .or_else(|| {
                self.0
                    .iter()
                    .find(|(_, t, _)| t.len() == run.len() && same(t))
            })
            .map(|(_, _, v)| v)
    }

    fn insert(&mut self, run: &str, v: T) {
        self.0.push((run.as_ptr() as usize, run.into(), v));
    }
}

/// A text being matched. It holds the request's [`Scratch`] from the first piece that needs
/// an index until it is dropped, so a list of patterns tried on one value locks once.
pub(crate) struct Subject<'t> {
    text: &'t str,
    scratch: &'t Scratch,
    held: Option<(Held<'t>, usize)>,
    /// Bytes substring searches have scanned in this text so far.
    scanned: usize,
}

enum Held<'t> {
    Slot(MutexGuard<'t, Slot>),
    /// The scratch was busy (it never is in one evaluation): a private one.
    Local(Box<Slot>),
}

impl<'t> Subject<'t> {
    pub(crate) fn new(text: &'t str, scratch: &'t Scratch) -> Self {
        Subject {
            text,
            scratch,
            held: None,
            scanned: 0,
        }
    }

    pub(crate) fn text(&self) -> &'t str {
        self.text
    }

    /// Counts bytes a substring search scanned.
    pub(super) fn scanned(&mut self, n: usize) {
        self.scanned += n;
    }

    /// Whether a short literal in a window of `window` bytes is better found in the index:
    /// the window is long, and substring searches have already read the text four times over
    /// (so many patterns are being tried on it: each would read it again, where the index
    /// answers in a word operation per character per 64 positions).
    pub(super) fn prefers_index(&self, window: usize) -> bool {
        window > 64 && self.scanned > 4 * self.text.len()
    }

    /// The slot, with the position of this text's index in it.
    fn slot(&mut self) -> Option<(&mut Slot, usize)> {
        let (text, scratch) = (self.text, self.scratch);
        let (held, at) = self.held.get_or_insert_with(|| {
            let mut held = match scratch.slot.try_lock() {
                Ok(g) => Held::Slot(g),
                Err(_) => Held::Local(Box::default()),
            };
            let at = match &mut held {
                Held::Slot(g) => g.index_for(text),
                Held::Local(s) => s.index_for(text),
            };
            (held, at)
        });
        let slot: &mut Slot = match held {
            Held::Slot(g) => g,
            Held::Local(s) => s,
        };
        Some((slot, *at))
    }

    /// Leftmost occurrence of literal `l` (`chars` characters) in bytes `from..end`, found in
    /// the index.
    pub(super) fn find_literal(
        &mut self,
        l: &str,
        chars: usize,
        from: usize,
        end: usize,
    ) -> Option<(usize, usize)> {
        let (slot, at) = self.slot()?;
        slot.indexes.get_mut(at)?.find_literal(l, chars, from, end)
    }

    /// See [`TextIndex::find_core`].
    pub(super) fn find_core(
        &mut self,
        piece: &Piece<'_>,
        from: usize,
        end: usize,
    ) -> Option<(usize, usize)> {
        let (slot, at) = self.slot()?;
        let Slot { indexes, periods } = slot;
        indexes.get_mut(at)?.find_core(piece, from, end, periods)
    }
}

/// A set of character positions being built.
struct Bits<'w> {
    words: &'w mut [u64],
}

impl Bits<'_> {
    fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Sets `from, from + stride, ...` up to `to` (inclusive).
    fn set_stride(&mut self, from: usize, to: usize, stride: usize) {
        if stride == 1 {
            step((to - from) / 64 + 1);
            for w in from / 64..=to / 64 {
                let Some(word) = self.words.get_mut(w) else {
                    break;
                };
                let lo = if w == from / 64 { from % 64 } else { 0 };
                let hi = if w == to / 64 { to % 64 } else { 63 };
                *word |= (u64::MAX << lo) & (u64::MAX >> (63 - hi));
            }
        } else {
            let mut i = from;
            while i <= to {
                step(1);
                self.set(i);
                i += stride;
            }
        }
    }
}

/// The index of one text: every set is `w` words in `sets`, found by an id; id 0 is the
/// empty set.
struct TextIndex {
    /// Where the text was when indexed, and the text itself: what the index is found by.
    addr: usize,
    text: Box<str>,
    /// Byte offset of each character and of the end, when the text is not ASCII (an ASCII
    /// text's character positions are its byte offsets).
    offsets: Option<Vec<u32>>,
    /// Words per set: one per 64 characters, and a spare (a shifted read takes the next).
    w: usize,
    /// The id of each Latin-1 character's set (0: not in the text). A key policy is made of
    /// Latin-1 characters only, so its patterns never need `other`.
    latin: [u32; 256],
    other: HashMap<char, u32>,
    runs: Memo<u32>,
    sets: Vec<u64>,
}

impl TextIndex {
    /// Indexes every character of `text` at once: O(text) work and
    /// O(distinct characters × text / 64) words.
    fn new(text: &str) -> Self {
        step(text.len());
        let offsets = (!text.is_ascii()).then(|| {
            let mut o: Vec<u32> = text
                .char_indices()
                .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
                .collect();
            o.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            o
        });
        let n = offsets.as_ref().map_or(text.len(), |o| o.len() - 1);
        let w = n / 64 + 2;
        let mut ix = TextIndex {
            addr: text.as_ptr() as usize,
            text: text.into(),
            offsets,
            w,
            latin: [0; 256],
            other: HashMap::new(),
            runs: Memo::default(),
            sets: vec![0; w],
        };
        let mut next = 1u32;
        let mark = |ix: &mut TextIndex, id: u32, i: usize| {
            let at = id as usize * w + i / 64;
            if let Some(word) = ix.sets.get_mut(at) {
                *word |= 1 << (i % 64);
            }
        };
        let mut assign = |ix: &mut TextIndex| {
            ix.sets.resize(ix.sets.len() + w, 0);
            next += 1;
            next - 1
        };
        if ix.offsets.is_none() {
            for (i, &b) in text.as_bytes().iter().enumerate() {
                let c = usize::from(b);
                let id = match ix.latin[c] {
                    0 => {
                        let id = assign(&mut ix);
                        ix.latin[c] = id;
                        id
                    }
                    id => id,
                };
                mark(&mut ix, id, i);
            }
        } else {
            for (i, c) in text.chars().enumerate() {
                let known = match ix.latin.get(c as usize) {
                    Some(&id) => id,
                    None => ix.other.get(&c).copied().unwrap_or(0),
                };
                let id = if known > 0 {
                    known
                } else {
                    let id = assign(&mut ix);
                    match ix.latin.get_mut(c as usize) {
                        Some(slot) => *slot = id,
                        None => {
                            ix.other.insert(c, id);
                        }
                    }
                    id
                };
                mark(&mut ix, id, i);
            }
        }
        ix
    }

    /// The character index of a byte offset on a character boundary.
    fn char_index(&self, byte: usize) -> usize {
        match &self.offsets {
            None => byte,
            Some(_) if byte == 0 => 0,
            Some(o) if byte == self.text.len() => o.len() - 1,
            Some(o) => {
                let b = u32::try_from(byte).unwrap_or(u32::MAX);
                o.binary_search(&b).unwrap_or_else(|at| at)
            }
        }
    }

    fn byte_offset(&self, ci: usize) -> usize {
        match &self.offsets {
            None => ci,
            Some(o) => o.get(ci).map_or(self.text.len(), |&b| b as usize),
        }
    }

    /// The id of a character's set (0 if the text does not hold it).
    fn char_id(&self, c: char) -> u32 {
        match self.latin.get(c as usize) {
            Some(&id) => id,
            None => self.other.get(&c).copied().unwrap_or(0),
        }
    }

    /// The id of a long run's set, built on first use (0 if the run does not occur).
    fn run_id(&mut self, run: &str, periods: &mut Memo<usize>) -> u32 {
        if let Some(&id) = self.runs.find(run) {
            return id;
        }
        let start = self.sets.len();
        self.sets.resize(start + self.w, 0);
        let found = self.build_run(run, periods, start);
        let id = if found {
            u32::try_from(start / self.w).unwrap_or(0)
        } else {
            self.sets.truncate(start);
            0
        };
        self.runs.insert(run, id);
        id
    }

    /// Marks in `sets[start..start + w]` the positions where `run` starts; whether there is
    /// one. Each occurrence is found by substring search; when the text goes on repeating the
    /// run's period after it, the occurrences that overlap it follow from comparisons of up to
    /// a run's length of text at a time (binary search where the repetition stops), so this
    /// costs O(text + run) in searches and comparisons whatever the input.
    fn build_run(&mut self, run: &str, periods: &mut Memo<usize>, start: usize) -> bool {
        let w = self.w;
        let Some(words) = self.sets.get_mut(start..start + w) else {
            return false;
        };
        let mut bits = Bits { words };
        let (t, r) = (self.text.as_bytes(), run.as_bytes());
        let l = r.len();
        if l == 0 || l > t.len() {
            return false;
        }
        let offsets = self.offsets.as_deref();
        let char_index = |byte: usize| match offsets {
            None => byte,
            Some(o) => {
                let b = u32::try_from(byte).unwrap_or(u32::MAX);
                o.binary_search(&b).unwrap_or_else(|at| at)
            }
        };
        let finder = memchr::memmem::Finder::new(r);
        let mut period: Option<(usize, usize)> = None;
        let mut found = false;
        let mut pos = 0;
        while pos + l <= t.len() {
            let Some(i) = finder.find(&t[pos..]) else {
                step(t.len() - pos);
                break;
            };
            step(i + l);
            found = true;
            let mut j = pos + i;
            let mut ci = char_index(j);
            bits.set(ci);
            // Occurrences overlapping this one are `p` apart, `p` the run's smallest period,
            // and exist exactly as long as the text repeats the run's last `p` bytes; `m` such
            // repeats after the run equal the run's last `m·p` bytes (for `m·p <= l`).
            let (p, p_chars) = *period.get_or_insert_with(|| smallest_period(run, periods));
            let k = l / p;
            let repeats = |j: usize, m: usize| {
                step(m * p);
                j + l + m * p <= t.len() && t[j + l..j + l + m * p] == r[l - m * p..]
            };
            if p < l {
                loop {
                    let m = if repeats(j, k) {
                        k
                    } else {
                        // The largest m < k that holds (m = 0 always does).
                        let (mut lo, mut hi) = (0, k);
                        while hi - lo > 1 {
                            let mid = (lo + hi) / 2;
                            if repeats(j, mid) {
                                lo = mid;
                            } else {
                                hi = mid;
                            }
                        }
                        lo
                    };
                    if m == 0 {
                        break;
                    }
                    bits.set_stride(ci + p_chars, ci + m * p_chars, p_chars);
                    j += m * p;
                    ci += m * p_chars;
                    if m < k {
                        break;
                    }
                }
            }
            // No occurrence starts strictly between two found ones (their distance would be
            // a period smaller than the smallest), so searching on from `j + 1` loses none.
            pos = j + 1;
        }
        found
    }

    /// Leftmost occurrence of literal `l` (`chars` characters, at most 64) in bytes
    /// `from..end`: the AND of its characters' sets, shifted by their offsets.
    fn find_literal(
        &self,
        l: &str,
        chars: usize,
        from: usize,
        end: usize,
    ) -> Option<(usize, usize)> {
        let lo = self.char_index(from);
        let last = self.char_index(end).checked_sub(chars)?;
        if last < lo {
            return None;
        }
        let mut ids = [0u32; 64];
        for (j, c) in l.chars().enumerate().take(64) {
            let id = self.char_id(c);
            if id == 0 {
                return None;
            }
            ids[j] = id;
        }
        let ids = &ids[..chars.min(64)];
        let (w0, w1) = (lo / 64, last / 64);
        let mut word = w0;
        while word <= w1 {
            let mut a = u64::MAX;
            if word == w0 {
                a &= u64::MAX << (lo % 64);
            }
            if word == w1 {
                a &= u64::MAX >> (63 - last % 64);
            }
            let mut j = 0;
            while j < ids.len() && a != 0 {
                a &= shifted_word(&self.sets, self.w, ids[j], word, j);
                j += 1;
            }
            step(j);
            if a != 0 {
                let s = word * 64 + a.trailing_zeros() as usize;
                return Some((self.byte_offset(s), self.byte_offset(s + chars)));
            }
            word += 1;
        }
        None
    }

    /// Leftmost occurrence, starting at byte `from` or later, of the piece's core that leaves
    /// the piece's trailing `?` room before byte `end`. Returns the core's byte range.
    fn find_core(
        &mut self,
        piece: &Piece<'_>,
        from: usize,
        end: usize,
        periods: &mut Memo<usize>,
    ) -> Option<(usize, usize)> {
        let lo = self.char_index(from);
        let last = self
            .char_index(end)
            .checked_sub(piece.core_chars + piece.trail_skip)?;
        if last < lo {
            return None;
        }
        let terms: &[Term] = &piece.terms;
        if piece.latin_terms {
            // Every term a Latin-1 character: its set's id is one table read, so combine
            // without gathering the ids first.
            let (w0, w1) = (lo / 64, last / 64);
            let mut word = w0;
            while word <= w1 {
                let mut a = u64::MAX;
                if word == w0 {
                    a &= u64::MAX << (lo % 64);
                }
                if word == w1 {
                    a &= u64::MAX >> (63 - last % 64);
                }
                let mut t = 0;
                while t < terms.len() && a != 0 {
                    if let Term::Char(off, c) = terms[t] {
                        let id = self.latin[(c as usize) & 0xff];
                        if id == 0 {
                            return None;
                        }
                        a &= shifted_word(&self.sets, self.w, id, word, off);
                    }
                    t += 1;
                }
                step(t);
                if a != 0 {
                    let s = word * 64 + a.trailing_zeros() as usize;
                    return Some((self.byte_offset(s), self.byte_offset(s + piece.core_chars)));
                }
                word += 1;
            }
            return None;
        }
        // Each term's set; an absent one means no match at all.
        let k = piece.terms.len();
        let mut inline = [0u32; INLINE_TERMS];
        let mut heap: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < k {
            let id = match piece.terms[i] {
                Term::Char(_, c) => self.char_id(c),
                Term::Run(_, atom) => match piece.atoms.get(atom) {
                    Some(Atom::Lit(run, _)) => self.run_id(run, periods),
                    _ => 0,
                },
            };
            if id == 0 {
                return None;
            }
            if k <= INLINE_TERMS {
                inline[i] = id;
            } else {
                heap.push(id);
            }
            i += 1;
        }
        let ids: &[u32] = if k <= INLINE_TERMS {
            &inline[..k]
        } else {
            &heap
        };
        let s = first_common(&self.sets, self.w, &piece.terms, ids, lo, last)?;
        Some((self.byte_offset(s), self.byte_offset(s + piece.core_chars)))
    }
}

/// The smallest period of `run` in bytes (`p` such that `run[p..] == run[..len - p]`), and the
/// characters in its first `p` bytes. Computed once per run and request.
fn smallest_period(run: &str, periods: &mut Memo<usize>) -> (usize, usize) {
    let r = run.as_bytes();
    let p = match periods.find(run) {
        Some(&p) => p,
        None => {
            step(r.len());
            // The longest proper border, by the prefix function.
            let mut border = vec![0usize; r.len()];
            let mut k = 0;
            for i in 1..r.len() {
                while k > 0 && r[i] != r[k] {
                    k = border[k - 1];
                }
                if r[i] == r[k] {
                    k += 1;
                }
                border[i] = k;
            }
            let p = r.len() - border.last().copied().unwrap_or(0);
            periods.insert(run, p);
            p
        }
    };
    let p_chars = run.get(..p).map_or(p, |s| s.chars().count());
    (p, p_chars)
}

/// The lowest position `s` in `lo..=hi` such that the set of every term (`ids`, in the
/// terms' order; each `w` words in `sets`) holds `s + the term's offset`.
fn first_common(
    sets: &[u64],
    w: usize,
    terms: &[Term],
    ids: &[u32],
    lo: usize,
    hi: usize,
) -> Option<usize> {
    let (w0, w1) = (lo / 64, hi / 64);
    let mut word = w0;
    while word <= w1 {
        let mut a = u64::MAX;
        if word == w0 {
            a &= u64::MAX << (lo % 64);
        }
        if word == w1 {
            a &= u64::MAX >> (63 - hi % 64);
        }
        let mut t = 0;
        while t < ids.len() && t < terms.len() && a != 0 {
            a &= shifted_word(sets, w, ids[t], word, terms[t].offset());
            t += 1;
        }
        step(t);
        if a != 0 {
            return Some(word * 64 + a.trailing_zeros() as usize);
        }
        word += 1;
    }
    None
}

/// Bits `64·word + off ..` of set `id` (each set `w` words of `sets`), as one word.
#[inline(always)]
fn shifted_word(sets: &[u64], w: usize, id: u32, word: usize, off: usize) -> u64 {
    let base = id as usize * w;
    let i = word + off / 64;
    let sh = off % 64;
    // Callers ask only for positions of the text, so `i + 1 < w` (a set has a spare word);
    // the checks keep a wrong call from reading another set.
    let lo = if i < w { sets[base + i] } else { 0 };
    if sh == 0 {
        return lo;
    }
    let hi = if i + 1 < w { sets[base + i + 1] } else { 0 };
    (lo >> sh) | (hi << (64 - sh))
}
