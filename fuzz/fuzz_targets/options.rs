//! cargo-fuzz target `options`: the body is `reliability_core::core::fuzz_entry::options`,
//! which `tests/fuzz_corpus.rs` also runs over `fuzz/corpus/options/` under plain `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reliability_core::core::fuzz_entry::options(data);
});
