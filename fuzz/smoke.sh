#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a few seconds from its committed seeds, so
# the targets never rot. Fails on any crash, assertion or build error. Called by .ci/run.
#   FUZZ_SECONDS=N   seconds per target (default 3)
# Uses the machine's stable toolchain: cargo-fuzz needs unstable flags, RUSTC_BOOTSTRAP=1 allows
# them. Sanitizer off: the crate forbids unsafe code, libFuzzer still catches panics, timeouts
# and memory blow-ups, and the build is several times faster; debug assertions are on (-a).
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
secs="${FUZZ_SECONDS:-3}"
start=$(date +%s)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
flags=(--sanitizer none --debug-assertions --release)
cargo fuzz build "${flags[@]}"
built=$(date +%s)
echo "fuzz: built every target in $((built - start)) s"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    if cargo fuzz run "${flags[@]}" "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 \
        -artifact_prefix="$work/" >"$work/$target.log" 2>&1; then
        runs=$(grep -o 'Done [0-9]* runs' "$work/$target.log" | tail -1 || true)
        echo "fuzz: $target ok (${runs:-no summary})"
    else
        echo "fuzz: $target FAILED"
        tail -40 "$work/$target.log"
        failed=1
    fi
done
echo "fuzz: smoke took $(( $(date +%s) - start )) s"
exit "$failed"
