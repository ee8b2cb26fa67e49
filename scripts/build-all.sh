#!/bin/sh
# Builds the addon for every Linux target this machine can make and puts each
# one in its platform package under npm/ (napi-rs's `napi artifacts` layout):
#   npm/linux-x64-gnu/reliability-core.linux-x64-gnu.node      glibc >= 2.17
#   npm/linux-arm64-gnu/reliability-core.linux-arm64-gnu.node  glibc >= 2.17
#   npm/linux-x64-musl/reliability-core.linux-x64-musl.node    Alpine
#   npm/linux-arm64-musl/reliability-core.linux-arm64-musl.node
# Every target is cross-compiled with `napi build -x` (cargo-zigbuild + zig
# from PyPI's ziglang), even x64 gnu on an x64 host: zig links against the
# glibc 2.17 symbol set (`.2.17` suffix), which the host toolchain cannot. The
# binaries are stripped (`--strip`). Release builds are reused: each target
# keeps its own directory under target/, so a second run with unchanged
# sources skips every target whose binary is newer than the Rust sources
# (seconds). `BUILD_ALL_TARGETS="a b"` limits the run to some of the targets;
# `BUILD_ALL_FORCE=1` rebuilds even when up to date.
#
# A target whose tools are missing (no cargo-zigbuild, no zig, `rustup target
# add` could not download) is skipped with a message, not failed:
# __test__/artifacts.test.js then reports it as skipped. Run
# scripts/ensure-build-tools.sh first (npm test does).
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$(python3 -m site --user-base 2>/dev/null || echo "$HOME/.local")/bin:$PATH"
export PATH

say() { echo "build-all: $*" >&2; }

TARGETS=${BUILD_ALL_TARGETS:-"x86_64-unknown-linux-gnu.2.17 aarch64-unknown-linux-gnu.2.17 x86_64-unknown-linux-musl aarch64-unknown-linux-musl"}
OUT=target/napi-artifacts
mkdir -p "$OUT"

if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  say "cargo-zigbuild not found (scripts/ensure-build-tools.sh installs it): skipping every cross target"
  exit 0
fi
# cargo-zigbuild runs `zig` from PATH, or `python3 -m ziglang` when there is none.
if ! command -v zig >/dev/null 2>&1 && ! python3 -m ziglang version >/dev/null 2>&1; then
  say "zig not found (pip install ziglang): skipping every cross target"
  exit 0
fi

installed=$(rustup target list --installed 2>/dev/null || true)
built=""
for t in $TARGETS; do
  base=${t%%.*}
  case "$installed" in
    *"$base"*) ;;
    *)
      say "Rust target $base not installed (rustup target add $base failed or is offline): skipping it"
      continue
      ;;
  esac
  # Up to date: the platform package's binary is newer than every input of
  # the Rust build, so the (cross-)compile is skipped. napi re-runs the crate's
  # compile and the LTO link on every build even when nothing changed
  # (~2 min a target here), so this check is what makes a second run fast.
  platform=$(node -e "import('@napi-rs/cli').then((m) => console.log(m.parseTriple(process.argv[1]).platformArchABI))" "$base")
  artefact="npm/$platform/reliability-core.$platform.node"
  if [ -z "${BUILD_ALL_FORCE:-}" ] && [ -f "$artefact" ] &&
    [ -z "$(find src build.rs Cargo.toml Cargo.lock -newer "$artefact" 2>/dev/null | head -n 1)" ]; then
    say "$t up to date ($artefact newer than src/, Cargo.*, build.rs; BUILD_ALL_FORCE=1 rebuilds)"
    continue
  fi
  start=$(date +%s)
  # --no-js: the root index.js is the loader `npm run build` generates; the
  # declarations go to the artefact directory, not over the root's.
  if npx --no-install napi build --platform --release --strip -x --target "$t" \
    --output-dir "$OUT" --no-js --dts index.d.ts >"$OUT/$base.log" 2>&1; then
    say "$t built in $(($(date +%s) - start)) s"
    built="$built $t"
  else
    say "$t FAILED after $(($(date +%s) - start)) s; last lines of $OUT/$base.log:"
    tail -n 20 "$OUT/$base.log" >&2
    exit 1
  fi
done

# Into npm/<platform>/, the layout `napi artifacts` makes in the release
# workflow (it insists on every configured target, darwin and win32 included,
# so here the Linux ones are copied by name).
for f in "$OUT"/reliability-core.*.node; do
  [ -e "$f" ] || continue
  platform=${f##*/reliability-core.}
  platform=${platform%.node}
  [ -d "npm/$platform" ] && cp "$f" "npm/$platform/"
done
say "done:${built:- nothing built}"
