//! cargo-fuzz target `hdr_import`: the body is `reliability_core::core::fuzz_entry::hdr_import`,
//! which `tests/fuzz_corpus.rs` also runs over `fuzz/corpus/hdr_import/` under plain `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reliability_core::core::fuzz_entry::hdr_import(data);
});
