//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and the
//! inputs of crashes found and fixed (`fuzz/regressions/<target>/`) through
//! the same entry points the cargo-fuzz targets call, on the stable
//! toolchain: every input must be handled without a panic.

use std::path::{Path, PathBuf};

/// The `fuzz/` folder of the checkout being tested. `cargo test` sets
/// `CARGO_MANIFEST_DIR` when it runs the test, and that is the one to trust:
/// the compile-time value names wherever the binary was first built, and
/// cargo reuses a test binary built from another checkout of the same
/// sources that shares the target dir (a CI run once replayed an empty,
/// vanished folder that way).
fn fuzz_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = manifest.join("../../fuzz");
    assert!(dir.is_dir(), "no fuzz folder at {}", dir.display());
    dir
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs every input of `dir` through `target`; returns how many ran, or
/// the names of the inputs that panicked.
fn replay(target: &str, dir: &Path) -> Result<usize, Vec<String>> {
    let mut failed = Vec::new();
    let files = inputs(dir);
    for f in &files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let ok = std::panic::catch_unwind(|| ferrokms_fuzzing::run(target, &data));
        match ok {
            Ok(true) => {}
            Ok(false) => failed.push(format!("{target}: unknown target")),
            Err(_) => failed.push(f.display().to_string()),
        }
    }
    if failed.is_empty() {
        Ok(files.len())
    } else {
        Err(failed)
    }
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_input_is_handled_without_panic() {
    for target in ferrokms_fuzzing::TARGETS {
        let n = replay(target, &fuzz_dir().join("corpus").join(target))
            .unwrap_or_else(|f| panic!("inputs that panic: {f:#?}"));
        assert!(n > 0, "fuzz/corpus/{target} is empty");
    }
}

#[test]
fn crash_inputs_found_by_fuzzing_stay_fixed() {
    for target in ferrokms_fuzzing::TARGETS {
        replay(target, &fuzz_dir().join("regressions").join(target))
            .unwrap_or_else(|f| panic!("regressions that panic again: {f:#?}"));
    }
}

#[test]
fn unknown_target_names_are_reported() {
    assert!(!ferrokms_fuzzing::run("no-such-target", b""));
}

#[test]
fn signed_sigv4_seeds_verify_at_the_fuzz_clock_so_the_fuzzer_reaches_the_success_path() {
    let dir = fuzz_dir().join("corpus/sigv4");
    let signed: Vec<PathBuf> = inputs(&dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("signed-"))
        })
        .collect();
    assert!(!signed.is_empty());
    for f in signed {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(
            ferrokms_fuzzing::sigv4_verdict(&data),
            Some(true),
            "{}",
            f.display()
        );
    }
}
