use super::*;
use proptest::prelude::*;

/// Matches through a subject on `scratch`, as evaluation does.
fn matches_in(g: &Glob<'_>, t: &str, scratch: &Scratch) -> bool {
    let mut s = Subject::new(t, scratch);
    g.matches(&mut s, 0, t.len())
}

/// The reference: dynamic programming over (pattern prefix, text prefix), O(pattern × text)
/// and obviously right. `?` is one character, `*` any run of characters.
fn reference(p: &[Tok], t: &[char]) -> bool {
    let mut prev = vec![false; t.len() + 1];
    prev[0] = true;
    for tok in p {
        let mut cur = vec![false; t.len() + 1];
        for j in 0..=t.len() {
            cur[j] = match tok {
                Tok::Star => prev[j] || (j > 0 && cur[j - 1]),
                Tok::One => j > 0 && prev[j - 1],
                Tok::Lit(c) => j > 0 && prev[j - 1] && t[j - 1] == *c,
            };
        }
        prev = cur;
    }
    prev[t.len()]
}

fn toks(p: &str) -> Vec<Tok> {
    p.chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        })
        .collect()
}

fn check(p: &str, t: &str) {
    let want = reference(&toks(p), &t.chars().collect::<Vec<_>>());
    assert_eq!(Glob::new(p).is_match(t), want, "pattern {p:?} text {t:?}");
    let scratch = Scratch::new();
    assert_eq!(
        matches_in(&Glob::new(p), t, &scratch),
        want,
        "pattern {p:?} text {t:?} (with scratch)"
    );
}

#[test]
fn agrees_with_the_reference_on_chosen_cases() {
    let pats = [
        "", "*", "**", "a", "a*", "*a", "*a*", "a*b", "a?c", "?", "??", "*?", "?*", "a*b*c",
        "*ab*ab*", "a**b", "*é?", "k?s:*", "x*y?z", "*a?b*", "*?a?*", "a?*?b", "*??*", "?a*b?",
        "*a?b?c*d", "*é?é*",
    ];
    let texts = [
        "", "a", "b", "ab", "abc", "acb", "aXc", "aab", "abab", "ababab", "é", "éx", "kms:x",
        "xyyz", "xyaz", "axbxc", "ba", "aébéc", "éaébé", "aXbYcZd",
    ];
    for p in pats {
        for t in texts {
            check(p, t);
        }
    }
}

#[test]
fn long_windows_use_the_index_and_agree() {
    let ab = "ab".repeat(200);
    let a = "a".repeat(300);
    let mixed = format!("{}é{}xé", "aé".repeat(80), "b".repeat(70));
    for t in [ab.as_str(), a.as_str(), mixed.as_str()] {
        for p in [
            "*a?b*",
            "*a?a*",
            "*b?a*b",
            "*a??b*",
            "*a?a?a?b*",
            "*é?é*",
            "*é?b*x?",
            "*a?é*",
            "*b?b?x*",
            "a*b?a*b?a*",
            "*ba?a*",
        ] {
            check(p, t);
        }
    }
    // Literal runs longer than 64 characters inside a `?` piece go to KMP.
    let run = "a".repeat(70);
    let t = format!("{run}b{run}ab{}", "a".repeat(10));
    for p in [
        format!("*{run}?b*"),
        format!("*{run}?a*"),
        format!("*b{run}?b*"),
        format!("*{run}b?{run}*"),
        format!("*{run}?{run}?*"),
    ] {
        check(&p, &t);
    }
    let t = "é".repeat(200);
    check(&format!("*{}?é*", "é".repeat(80)), &t);
    check(&format!("*{}?a*", "é".repeat(80)), &t);
}

#[test]
fn literals_are_found_in_the_index_once_the_text_has_been_read_over_and_over() {
    for t in [
        format!("{}xyz{}", "ab".repeat(150), "ab".repeat(10)),
        format!("{}xéz{}", "éb".repeat(150), "éb".repeat(10)),
    ] {
        let scratch = Scratch::new();
        let mut subject = Subject::new(&t, &scratch);
        // Each reads the whole text with a substring search and finds nothing.
        for _ in 0..6 {
            assert!(!Glob::new("*bb*").matches(&mut subject, 0, t.len()));
        }
        assert!(subject.prefers_index(t.len()));
        for p in [
            "*x?z*",
            "*xyz*",
            "*xéz*",
            "*z*ab",
            "*zab*",
            "*ba*b*xy*",
            "*bb*",
            "a*zb*",
        ] {
            let want = reference(&toks(p), &t.chars().collect::<Vec<_>>());
            assert_eq!(
                Glob::new(p).matches(&mut subject, 0, t.len()),
                want,
                "{p} {t}"
            );
        }
    }
}

#[test]
fn literal_tokens_from_variables_are_not_wildcards() {
    let g = Glob::from_tokens([Tok::Lit('a'), Tok::Lit('*')]);
    assert!(g.is_match("a*"));
    assert!(!g.is_match("ab"));
    let g = Glob::from_segs(&[
        Seg::Wild("*x"),
        Seg::Lit(Cow::Borrowed("?*")),
        Seg::Wild("?"),
    ]);
    assert!(g.is_match("zzx?*q"));
    assert!(!g.is_match("zzxab q"));
}

/// A pattern token, with a small alphabet so that matches are common.
fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        3 => Just(Tok::Star),
        3 => Just(Tok::One),
        3 => Just(Tok::Lit('a')),
        2 => Just(Tok::Lit('b')),
        1 => Just(Tok::Lit('é')),
        1 => Just(Tok::Lit(':')),
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![4 => Just('a'), 3 => Just('b'), 1 => Just('é'), 1 => Just(':')],
        0..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn agrees_with_the_reference(p in prop::collection::vec(tok(), 0..14), t in text(24)) {
        let tc: Vec<char> = t.chars().collect();
        prop_assert_eq!(Glob::from_tokens(p.clone()).is_match(&t), reference(&p, &tc));
    }

    #[test]
    fn agrees_with_the_reference_on_long_texts(
        p in prop::collection::vec(tok(), 0..24),
        t in text(400),
    ) {
        let tc: Vec<char> = t.chars().collect();
        let scratch = Scratch::new();
        let g = Glob::from_tokens(p.clone());
        prop_assert_eq!(matches_in(&g, &t, &scratch), reference(&p, &tc));
        // Again, with the index of this text already built.
        prop_assert_eq!(matches_in(&g, &t, &scratch), reference(&p, &tc));
    }

    #[test]
    fn agrees_with_the_reference_when_many_patterns_share_a_subject(
        ps in prop::collection::vec(prop::collection::vec(tok(), 1..10), 1..40),
        t in text(300),
    ) {
        // As a condition's list of patterns is tried on one value: literals are found by
        // substring search at first, then (the text read over and over) in the index.
        let tc: Vec<char> = t.chars().collect();
        let scratch = Scratch::new();
        let mut subject = Subject::new(&t, &scratch);
        for p in &ps {
            let g = Glob::from_tokens(p.clone());
            prop_assert_eq!(g.matches(&mut subject, 0, t.len()), reference(p, &tc), "{:?}", p);
        }
    }

    #[test]
    fn agrees_with_the_reference_with_long_runs(
        blocks in prop::collection::vec(0usize..90, 1..6),
        pat in prop::collection::vec((0usize..80, 0usize..3), 1..4),
        lead in any::<bool>(),
        trail in any::<bool>(),
    ) {
        // Text: runs of `a` separated by `b`; pattern: runs of `a` separated by `?` or `b`.
        let t: String = blocks.iter().fold(String::new(), |mut t, n| {
            t.push_str(&"a".repeat(*n));
            t.push('b');
            t
        });
        let mut p = String::new();
        if lead { p.push('*'); }
        for (n, sep) in &pat {
            p.push_str(&"a".repeat(*n));
            p.push(['?', 'b', '*'][*sep]);
        }
        if trail { p.push('*'); }
        let tc: Vec<char> = t.chars().collect();
        prop_assert_eq!(Glob::new(&p).is_match(&t), reference(&toks(&p), &tc), "{} {}", p, t);
    }
}

/// Work, counted in bytes compared or scanned and words combined, stays within a small
/// multiple of text + pattern plus the bit-parallel term (literal characters × text / 64),
/// where the old matcher needed text × pattern.
#[test]
fn pathological_pairs_take_bounded_steps() {
    let n = 8192;
    let cases: Vec<(String, String)> = vec![
        // Classic backtracking killers.
        ("a".repeat(n), format!("*{}?b*", "a".repeat(4000))),
        ("a".repeat(n), format!("{}*b", "*a".repeat(2000))),
        ("a".repeat(n), format!("*{}b*", "a".repeat(4000))),
        // Periodic text against a periodic `?` piece that never fits.
        ("ab".repeat(n / 2), format!("*{}a?b*", "ab".repeat(1000))),
        ("ab".repeat(n / 2), "*a?b*".to_string()),
        ("ab".repeat(n / 2), format!("*{}*", "a?b?".repeat(1000))),
        // A long literal run (as a policy variable makes) around a `?`.
        (
            "a".repeat(n),
            format!("*{}?{}b*", "a".repeat(2000), "a".repeat(2000)),
        ),
        // Non-ASCII text.
        ("é".repeat(n / 2), format!("*{}?x*", "é".repeat(1000))),
    ];
    for (t, p) in &cases {
        let g = Glob::new(p);
        let tc: Vec<char> = t.chars().collect();
        let want = reference(&toks(p), &tc);
        take_steps();
        let got = matches_in(&g, t, &Scratch::new());
        let steps = take_steps();
        assert_eq!(got, want, "pattern of {} chars", p.len());
        let (tn, pm) = (t.len() as u64, p.len() as u64);
        let bound = 8 * (tn + pm) + pm * (tn / 64 + 2);
        assert!(
            steps <= bound,
            "{steps} steps for a {tn}-byte text and a {pm}-byte pattern (bound {bound})"
        );
        if pm > 100 {
            assert!(
                steps * 16 < tn * pm,
                "{steps} steps is not far below text × pattern"
            );
        }
        eprintln!("{pm}-byte pattern, {tn}-byte text: {steps} steps");
    }
}

/// Many patterns against one long text pay for the text once: the index is shared.
#[test]
fn many_patterns_share_one_index() {
    let t = "ab".repeat(4096);
    let scratch = Scratch::new();
    let globs: Vec<Glob> = (0..2000)
        .map(|i| Glob::new(&format!("*a?{}b*", "?".repeat(2 * (i % 5)))))
        .collect();
    take_steps();
    for g in &globs {
        assert!(!matches_in(g, &t, &scratch));
    }
    let per_pattern = take_steps() / 2000;
    // Each pattern: the cache check (the text's length) plus a few words per 64 positions.
    assert!(
        per_pattern < 3 * t.len() as u64,
        "{per_pattern} steps per pattern"
    );
}
