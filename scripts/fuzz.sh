#!/bin/sh
# `npm run fuzz`: runs every cargo-fuzz target in fuzz/ for a bounded time
# (FUZZ_SECONDS each, default 30), adding what the fuzzer finds to
# fuzz/corpus/<target>/ (commit the new files; `cargo test` replays them
# through tests/fuzz_corpus.rs). A crash is saved under fuzz/artifacts/<target>/
# and makes the script exit 1 after the other targets have run.
#
#   FUZZ_SECONDS=300 npm run fuzz            # longer runs
#   FUZZ_TARGETS="ops_state hdr_import" npm run fuzz
#   FUZZ_SANITIZER=address npm run fuzz     # ASan (slower; the core has no unsafe code)
set -eu
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-30}"
TARGETS="${FUZZ_TARGETS:-graph_file ops_state hdr_import redis_message options}"
SANITIZER="${FUZZ_SANITIZER:-none}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes nightly-only flags (-Z...); a stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1, so no nightly install is needed.
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

failed=""
for t in $TARGETS; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(ls "fuzz/corpus/$t" | wc -l)
  echo "fuzz: $t for ${SECONDS_EACH}s"
  # -max_len keeps corpus entries small (the committed corpus stays < 2 MB);
  # -rss_limit_mb and -malloc_limit_mb turn a huge allocation into a finding.
  if cargo fuzz run --fuzz-dir fuzz --sanitizer "$SANITIZER" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -max_len=16384 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -timeout=10 -print_final_stats=1; then
    :
  else
    failed="$failed $t"
  fi
  after=$(ls "fuzz/corpus/$t" | wc -l)
  echo "fuzz: $t: corpus $before -> $after files"
done

if [ -n "$failed" ]; then
  echo "fuzz: crashes in:$failed (inputs under fuzz/artifacts/<target>/; fix, then copy each into fuzz/corpus/<target>/)" >&2
  exit 1
fi
echo "fuzz: no crash; new corpus files are in fuzz/corpus/ (commit them; cargo test replays them)"
