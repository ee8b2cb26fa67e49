//! cargo-fuzz target `ops_state`: the body is `reliability_core::core::fuzz_entry::ops_state`,
//! which `tests/fuzz_corpus.rs` also runs over `fuzz/corpus/ops_state/` under plain `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reliability_core::core::fuzz_entry::ops_state(data);
});
