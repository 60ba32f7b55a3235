#!/usr/bin/env bash
# Fuzzes the offset parser, CSV import and config loading for a bounded time
# each (SECONDS_PER_TARGET, default 120). Any panic stops with the input saved
# under fuzz/artifacts/. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${SECONDS_PER_TARGET:-120}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs unstable compiler flags (sanitizers); the stable toolchain
# allows them when told to.
export RUSTC_BOOTSTRAP=1
for target in offset csv_import config; do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    # New inputs go to corpus/ (not kept in git); seeds/ holds the starting points.
    cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds" -rss_limit_mb=4096 2>&1 |
        grep -E '^(#[0-9]+.*DONE|Done|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' || true
    if ls artifacts/"$target"/crash-* >/dev/null 2>&1; then
        echo "$target: crash found, see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
echo "fuzzing: no panics"
