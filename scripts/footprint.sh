#!/usr/bin/env bash
# Resident memory and CPU of the idle daemon with N cases loaded (default
# 100000): import, start `keydates run`, wait for its first pass to finish,
# then sample /proc for SAMPLE_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-100000}"
sample="${SAMPLE_SECONDS:-60}"
cargo build --release --quiet
bin="$PWD/target/release/keydates"
work="$(mktemp -d)"
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
export KEYDATES__DATABASE__URL="$work/keydates.db"
export KEYDATES__MAIL__SPOOL_DIR="$work/mail"
export KEYDATES__LOG__LEVEL=warn
export KEYDATES__WEB__LISTEN=

# Ten cases per authority, reports spread over the past year so that the
# daemon has a real mix of pending, missed and future actions.
python3 - "$work" "$n" <<'PY'
import sys, datetime
work, n = sys.argv[1], int(sys.argv[2])
authorities = n // 10 + 1
regions = ["north-west", "north-east", "east-midlands", "west-midlands", "east", "london", "south-east", "south-west"]
with open(f"{work}/authorities.csv", "w") as f:
    f.write("code,name,region,dcs_name,dcs_email,coordinator_email\n")
    for a in range(authorities):
        f.write(f"LA{a},Authority {a},{regions[a % 8]},DCS {a},dcs{a}@la{a}.example.gov.uk,\n")
start = datetime.date(2025, 12, 1)
with open(f"{work}/cases.csv", "w") as f:
    f.write("case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\n")
    for i in range(n):
        judgement = "inadequate" if i % 2 == 0 else "requires_improvement"
        report = start + datetime.timedelta(days=i % 365)
        f.write(f"C{i},LA{i % authorities},{judgement},{report},,hmi@ofsted.example.gov.uk,\n")
PY
"$bin" import authorities "$work/authorities.csv"
"$bin" import cases "$work/cases.csv"

"$bin" run 2>"$work/daemon.log" &
daemon=$!
# The first pass plans every case; wait (bounded) until it has been recorded.
for _ in $(seq 1 600); do
    health=$("$bin" status --format json 2>/dev/null || true)
    if grep -q '"last_pass_at": "' <<<"$health"; then break; fi
    sleep 1
done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$daemon/status"; }
c0=$(cpu); r0=$(rss)
sleep "$sample"
c1=$(cpu); r1=$(rss)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
rows=$("$bin" outbox --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "cases: $n, outbox rows: $rows"
echo "idle RSS: $((r0 / 1024)) MiB at start of sample, $((r1 / 1024)) MiB at end; peak $((hwm / 1024)) MiB"
python3 -c "print(f'idle CPU: {($c1 - $c0) / $ticks:.2f} s over $sample s = {100 * ($c1 - $c0) / $ticks / $sample:.2f} %')"
