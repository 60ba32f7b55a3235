#!/usr/bin/env bash
# End-to-end delivery throughput: keydates sending N due emails to smtp-sink,
# next to smtp-source sending N messages of the same size with the same
# concurrency to the same sink. Prints a markdown table of medians.
#
# Env: N (emails, default 10000), POOLS (default "1 4 8"), RUNS (default 3),
#      RUN_CAP (seconds one timed keydates pass may take, default 80),
#      PORT (default 2525), KEYDATES_BIN (default target/release/keydates).
#
# A pass that needs longer than RUN_CAP is stopped there and its rate is what
# the sink received in that time: the whole benchmark must stay within about
# 15 minutes even where a single connection delivers only ~20 emails/s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-10000}
POOLS=${POOLS:-"1 4 8"}
RUNS=${RUNS:-3}
PORT=${PORT:-2525}
BIN=${KEYDATES_BIN:-$ROOT/target/release/keydates}
RUN_CAP=${RUN_CAP:-80}
# Hard cap for smtp-source, so a hung sender cannot stall the script.
STEP_TIMEOUT=${STEP_TIMEOUT:-300}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- prerequisites ----------------------------------------------------------
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/sink.sh
source "$ROOT/scripts/sink.sh"
prepare

# --- workspace and cleanup --------------------------------------------------
WORK=$(mktemp -d /tmp/keydates-bench.XXXXXX)
# Work with a copy of the binary: a rebuild in the shared target folder during
# the run must not swap the program under test.
cp "$BIN" "$WORK/keydates"
BIN=$WORK/keydates
cleanup() {
    stop_sink
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export KEYDATES_CONFIG=$ROOT/config/keydates.toml
export KEYDATES__MAIL__SPOOL_DIR=$WORK/spool
export KEYDATES__MAIL__SMTP__HOST=127.0.0.1
export KEYDATES__MAIL__SMTP__PORT=$PORT
export KEYDATES__MAIL__SMTP__TLS=none
export KEYDATES__LOG__LEVEL=${KEYDATES__LOG__LEVEL:-warn}
export KEYDATES__WEB__LISTEN=

kd() { "$BIN" "$@"; }

sent_rows() {
    kd outbox --status sent --format json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'
}

# --- data -------------------------------------------------------------------
log "generating $N authorities and cases in $WORK"
write_same_day_cases "$WORK" "$N"

TEMPLATE_DB=$WORK/template/keydates.db
export KEYDATES__DATABASE__URL=$TEMPLATE_DB
t0=$(now_s)
kd import authorities "$WORK/authorities.csv" >/dev/null
kd import cases "$WORK/cases.csv" >/dev/null
t1=$(now_s)
IMPORT_S=$(elapsed "$t0" "$t1")

DAY=$(kd date 2026-09-01 "50 working days")
PREV=$(date -d "$DAY - 1 day" +%F)
log "plan-chase falls due on $DAY; planning pass at $PREV"

# Planning pass: records the plan (and marks the earlier, long-expired rules
# missed) so that the timed passes below are mostly delivery. Its IMS digest
# goes to the file spool, not the sink.
t0=$(now_s)
KEYDATES__MAIL__TRANSPORT="file" kd run --once --now "$PREV"
t1=$(now_s)
PLAN_S=$(elapsed "$t0" "$t1")
confirm_all_chases "$TEMPLATE_DB"
# Fold the WAL into the main file so one cp makes a faithful copy.
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()' "$TEMPLATE_DB"
DUE=$(python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT COUNT(*) FROM outbox WHERE status = ? AND rule_id = ?", ("pending", "plan-chase")).fetchone()[0])
' "$TEMPLATE_DB")
log "import ${IMPORT_S}s, planning pass ${PLAN_S}s, $DUE plan-chase rows pending"

# Size of one keydates message, to give smtp-source the same payload.
kd preview --rule plan-chase --subject C0 --eml "$WORK/sample.eml" >/dev/null
MSG_BYTES=$(stat -c %s "$WORK/sample.eml")
# One message goes to the DCS plus three copies (lead inspector, senior HMI, IMS).
RCPTS=4
log "one keydates message is $MSG_BYTES bytes, $RCPTS recipients"

export KEYDATES__MAIL__TRANSPORT=smtp
declare -A KD_RATES SRC_RATES KD_TIMES KD_RECV KD_SENT KD_CAPPED KD_PEAK
for pool in $POOLS; do
    for ((run = 1; run <= RUNS; run++)); do
        dir=$WORK/p$pool-r$run
        mkdir -p "$dir"
        cp "$TEMPLATE_DB" "$dir/keydates.db"
        export KEYDATES__DATABASE__URL=$dir/keydates.db
        export KEYDATES__MAIL__SMTP__POOL_SIZE=$pool

        start_sink "$dir/sink-kd.txt"
        t0=$(now_s)
        rc=0
        # GNU time reports the largest resident size of what it waited for:
        # here, through timeout, the sending process.
        /usr/bin/time -f %M -o "$dir/peak-kib.txt" \
            timeout -s TERM "$RUN_CAP" "$BIN" run --once --now "$DAY" >/dev/null || rc=$?
        t1=$(now_s)
        case $rc in
        0) capped=no ;;
        124) capped=yes ;;
        *) log "keydates run --once failed with exit $rc"; exit 1 ;;
        esac
        sleep 0.3 # let the sink print its last counters
        stop_sink
        kd_s=$(elapsed "$t0" "$t1")
        recv=$(sink_count "$dir/sink-kd.txt")
        sent=$(sent_rows)
        kd_rate=$(rate "$recv" "$kd_s")
        peak_mib=$(awk '/^[0-9]+$/ {printf "%.0f", $1 / 1024}' "$dir/peak-kib.txt")

        start_sink "$dir/sink-src.txt"
        t0=$(now_s)
        # -d: keep each session open for the next message, as keydates' pool does.
        timeout "$STEP_TIMEOUT" smtp-source -d -s "$pool" -m "$DUE" -l "$MSG_BYTES" -r "$RCPTS" \
            -f keydates@example.org -t dcs@la.example.gov.uk "127.0.0.1:$PORT"
        t1=$(now_s)
        sleep 0.3
        stop_sink
        src_s=$(elapsed "$t0" "$t1")
        src_recv=$(sink_count "$dir/sink-src.txt")
        src_rate=$(rate "$src_recv" "$src_s")

        log "pool $pool run $run: keydates ${kd_s}s (capped: $capped, peak ${peak_mib} MiB) sink=$recv outbox sent=$sent -> $kd_rate msg/s; smtp-source ${src_s}s sink=$src_recv -> $src_rate msg/s"
        KD_RATES[$pool]+="$kd_rate "
        SRC_RATES[$pool]+="$src_rate "
        KD_TIMES[$pool]+="$kd_s "
        KD_RECV[$pool]+="$recv "
        KD_SENT[$pool]+="$sent "
        KD_PEAK[$pool]+="$peak_mib "
        [[ $capped == yes ]] && KD_CAPPED[$pool]=$((${KD_CAPPED[$pool]:-0} + 1))
        rm -rf "$dir"
    done
done

# --- report -----------------------------------------------------------------
echo
echo "## keydates delivery throughput"
echo
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -h | awk '/^Mem:/ {print $2}') memory"
echo "- emails due: $DUE (N=$N), message size $MSG_BYTES bytes, $RCPTS recipients each, runs per pool size: $RUNS"
echo "- import ${IMPORT_S}s; planning pass (run --once --now $PREV) ${PLAN_S}s; timed pass: run --once --now $DAY"
echo
echo "- a timed pass is stopped after ${RUN_CAP}s (RUN_CAP); its rate is then what the sink received in that time"
echo
echo "| pool size | keydates s (median) | keydates msg/s (median) | smtp-source msg/s (median) | keydates / smtp-source | keydates peak RSS MiB (median) | sink received per run | outbox sent per run | runs stopped at cap |"
echo "|---:|---:|---:|---:|---:|---:|---|---|---:|"
for pool in $POOLS; do
    # shellcheck disable=SC2086 # word splitting of the collected figures is wanted
    kd_med=$(median ${KD_RATES[$pool]})
    # shellcheck disable=SC2086
    src_med=$(median ${SRC_RATES[$pool]})
    # shellcheck disable=SC2086
    t_med=$(median ${KD_TIMES[$pool]})
    # shellcheck disable=SC2086
    peak_med=$(median ${KD_PEAK[$pool]})
    ratio=$(python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.3f}")' "$kd_med" "$src_med")
    echo "| $pool | $t_med | $kd_med | $src_med | $ratio | $peak_med | ${KD_RECV[$pool]% } | ${KD_SENT[$pool]% } | ${KD_CAPPED[$pool]:-0}/$RUNS |"
done
