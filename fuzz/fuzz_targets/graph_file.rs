//! cargo-fuzz target `graph_file`: the body is `reliability_core::core::fuzz_entry::graph_file`,
//! which `tests/fuzz_corpus.rs` also runs over `fuzz/corpus/graph_file/` under plain `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reliability_core::core::fuzz_entry::graph_file(data);
});
