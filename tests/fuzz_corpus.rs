//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the
//! same entry functions the cargo-fuzz targets call, so plain `cargo test`
//! (stable, no libFuzzer) re-checks every input a fuzz run ever kept,
//! including the ones that once crashed. `npm run fuzz` grows the corpus.

use std::path::Path;

use reliability_core::core::fuzz_entry::TARGETS;

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    let mut total = 0;
    for (name, run) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target has a corpus)", dir.display()))
            .map(|e| e.expect("a readable corpus entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{name}: the corpus is empty");
        for f in &files {
            let data = std::fs::read(f).expect("a readable corpus file");
            // A panic names the file, so a failing input is easy to find.
            let ok = std::panic::catch_unwind(|| run(&data));
            assert!(ok.is_ok(), "{name}: {} fails its target", f.display());
        }
        total += files.len();
    }
    assert!(total >= TARGETS.len());
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("fuzz_targets");
    for (name, _) in TARGETS {
        let f = targets.join(format!("{name}.rs"));
        let src = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(
            src.contains(&format!("fuzz_entry::{name}(")),
            "{} calls fuzz_entry::{name}",
            f.display()
        );
    }
}
