#!/usr/bin/env bash
# Gradescope image setup for grading P2PTracker++ with peershare (runs once, as root, when the
# autograder image is built; the autograder zip is unpacked in /autograder/source).
#
# The zip holds this file, run_autograder, and either a prebuilt Linux x86-64 `peershare`
# binary (fastest: `cargo build --release`, then copy target/release/peershare) or the peershare
# source tree in `peershare/` (built here with rustup's stable toolchain).
set -euo pipefail
SOURCE="${PEERSHARE_AUTOGRADER_ROOT:-/autograder}/source"

apt-get update -qq
# python3 runs the students' programs; iproute2 gives `ss`, which names whoever holds port 5100.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 iproute2 curl build-essential >/dev/null

if [ -x "$SOURCE/peershare" ]; then
  install -m 0755 "$SOURCE/peershare" /usr/local/bin/peershare
elif [ -d "$SOURCE/peershare" ]; then
  if ! command -v cargo >/dev/null 2>&1; then
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
  fi
  cargo build --release --manifest-path "$SOURCE/peershare/Cargo.toml"
  install -m 0755 "$SOURCE/peershare/target/release/peershare" /usr/local/bin/peershare
else
  echo "setup.sh: put a peershare binary or the peershare/ source tree in the autograder zip" >&2
  exit 1
fi
peershare --version
