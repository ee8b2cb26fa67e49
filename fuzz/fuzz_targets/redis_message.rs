//! cargo-fuzz target `redis_message`: the body is `reliability_core::core::fuzz_entry::redis_message`,
//! which `tests/fuzz_corpus.rs` also runs over `fuzz/corpus/redis_message/` under plain `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reliability_core::core::fuzz_entry::redis_message(data);
});
