#!/usr/bin/env bash
# Fault suite for delivery: each test starts from the same planned database
# (N emails due on one day) and checks that every due email reaches a local
# smtp-sink, with duplicates bounded and nothing lost.
#   a. kill -9 of the daemon during a burst, repeatedly
#   b. SMTP server down for a stretch, then back
#   c. another process holding a write transaction for ~10 s
#   d. state directory on a full filesystem (small tmpfs), then space freed
#
# Env: N (emails, default 2000), PORT (default 2526), POOL (default 4),
#      MAX_KILLS (default 60), HOLD_SECS (default 10),
#      KEYDATES_BIN (default target/release/keydates).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-2000}
PORT=${PORT:-2526}
POOL=${POOL:-4}
MAX_KILLS=${MAX_KILLS:-60}
HOLD_SECS=${HOLD_SECS:-10}
BIN=${KEYDATES_BIN:-$ROOT/target/release/keydates}
# Any single keydates command taking longer than this is a failure, not a wait.
CMD_TIMEOUT=${CMD_TIMEOUT:-180}
# Wall-clock limit for the kill loop of test a.
KILL_LOOP_SECS=${KILL_LOOP_SECS:-240}

log() { printf '[faults %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- prerequisites ----------------------------------------------------------
if [[ ! -x /usr/sbin/smtp-sink ]]; then
    log "installing postfix for smtp-sink"
    apt-get update -qq
    # No mailer configuration: we only want the test programs, not a running MTA.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
if [[ ! -x $BIN ]]; then
    log "building keydates"
    (cd "$ROOT" && nice cargo build --release)
fi

# --- workspace and cleanup --------------------------------------------------
WORK=$(mktemp -d /tmp/keydates-faults.XXXXXX)
# smtp-sink drops to "nobody" and must reach its dump folders below.
chmod 755 "$WORK"
SINK_PID=""
DAEMON_PID=""
HOLDER_PID=""
MOUNTED=""
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "-$sig" "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
stop_sink() { stop_pid "$SINK_PID"; SINK_PID=""; }
cleanup() {
    stop_pid "$DAEMON_PID" KILL
    stop_pid "$HOLDER_PID" KILL
    stop_sink
    if [[ -n $MOUNTED ]]; then umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export KEYDATES_CONFIG=$ROOT/config/keydates.toml
export KEYDATES__MAIL__SPOOL_DIR=$WORK/spool
export KEYDATES__MAIL__SMTP__HOST=127.0.0.1
export KEYDATES__MAIL__SMTP__PORT=$PORT
export KEYDATES__MAIL__SMTP__TLS=none
export KEYDATES__MAIL__SMTP__POOL_SIZE=$POOL
export KEYDATES__LOG__LEVEL=${KEYDATES__LOG__LEVEL:-warn}

kd() { timeout "$CMD_TIMEOUT" "$BIN" "$@"; }
port_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$PORT" 2>/dev/null; }

# Starts smtp-sink writing each message to its own file under $1.
start_sink() {
    local dump=$1 i
    install -d -o nobody "$dump"
    smtp-sink -u nobody -m 512 -d "$dump/%Y%m%d%H/%M." "127.0.0.1:$PORT" 1024 >"$dump.log" 2>&1 &
    SINK_PID=$!
    for i in $(seq 1 50); do
        port_open && return 0
        sleep 0.1
    done
    log "smtp-sink did not start on 127.0.0.1:$PORT"; cat "$dump.log" >&2; exit 1
}
count_status() {
    kd outbox --status "$1" --format json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'
}
# Prints "due received distinct duplicates lost unsent other" for the
# plan-chase rows of database $2 against the messages dumped under $1.
analyse() {
    python3 - "$1" "$2" <<'PY'
import collections, os, re, sqlite3, sys
dump, db = sys.argv[1], sys.argv[2]
seen = collections.Counter()
files = 0
for root, _, names in os.walk(dump):
    for name in names:
        files += 1
        with open(os.path.join(root, name), "rb") as f:
            data = f.read()
        # \s* also crosses a folded header line.
        m = re.search(rb"^message-id:\s*(<[^>]+>)", data, re.I | re.M)
        if m:
            seen[m.group(1).decode()] += 1
c = sqlite3.connect(db)
rows = c.execute("SELECT message_id, status FROM outbox WHERE rule_id = 'plan-chase'").fetchall()
ours = {mid for mid, _ in rows if mid}
received = sum(n for mid, n in seen.items() if mid in ours)
distinct = sum(1 for mid in seen if mid in ours)
lost = sum(1 for mid, _ in rows if not mid or mid not in seen)
unsent = sum(1 for _, status in rows if status != "sent")
print(len(rows), received, distinct, received - distinct, lost, unsent, files - received)
PY
}

RESULTS=()
# Records one summary row: test kills due received duplicates lost result.
record() { RESULTS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"); }

# --- the planned database every test starts from ----------------------------
log "generating $N authorities and cases in $WORK"
{
    echo "code,name,region,dcs_name,dcs_email,coordinator_email"
    for ((i = 0; i < N; i++)); do
        echo "A$i,Authority $i Council,london,Director $i,dcs$i@la$i.example.gov.uk,"
    done
} >"$WORK/authorities.csv"
{
    echo "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email"
    for ((i = 0; i < N; i++)); do
        echo "C$i,A$i,requires_improvement,2026-09-01,,hmi@ofsted.example.gov.uk,"
    done
} >"$WORK/cases.csv"
TEMPLATE_DB=$WORK/template/keydates.db
export KEYDATES__DATABASE__URL=$TEMPLATE_DB
kd import authorities "$WORK/authorities.csv" >/dev/null
kd import cases "$WORK/cases.csv" >/dev/null
DAY=$(kd date 2026-09-01 "50 working days")
PREV=$(date -d "$DAY - 1 day" +%F)
# Instants in UTC for given local (Europe/London) times on DAY.
at() { date -u -d "TZ=\"Europe/London\" $DAY $1" +%Y-%m-%dT%H:%M:%SZ; }
# Plan once, the day before; the IMS digest for the earlier expired rules goes
# to the file spool, so only plan-chase mail reaches the sinks below.
KEYDATES__MAIL__TRANSPORT="file" kd run --once --now "$PREV" >/dev/null
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()' "$TEMPLATE_DB"
export KEYDATES__MAIL__TRANSPORT=smtp
log "plan-chase due on $DAY for $N cases; pool size $POOL"

# Fresh copy of the planned database for test $1; prints its path.
fresh_db() {
    local dir=$WORK/$1
    mkdir -p "$dir"
    cp "$TEMPLATE_DB" "$dir/keydates.db"
    echo "$dir/keydates.db"
}

# --- a. kill -9 during a burst ----------------------------------------------
test_kill() {
    local db dir kills=0 pending=1 sending=0 wait_s rc started
    db=$(fresh_db a)
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    start_sink "$dir/mail"
    started=$SECONDS
    while ((kills < MAX_KILLS && SECONDS - started < KILL_LOOP_SECS)); do
        "$BIN" run --now "$DAY" >>"$dir/daemon.log" 2>&1 &
        DAEMON_PID=$!
        # A random point in the burst: 0.2 to 1.5 s.
        wait_s=$(awk -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.2 + (r % 1301) / 1000 }')
        sleep "$wait_s"
        kill -9 "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
        kills=$((kills + 1))
        pending=$(count_status pending)
        sending=$(count_status sending)
        log "a: kill $kills after ${wait_s}s: pending $pending, sending $sending"
        ((pending + sending == 0)) && break
    done
    # One clean pass an hour later, when any interrupted claim is released.
    rc=0
    kd run --once --now "$(at 10:00)" >>"$dir/daemon.log" 2>&1 || rc=$?
    sleep 0.5 # let the sink close its last files
    stop_sink
    read -r due received distinct dups lost unsent other < <(analyse "$dir/mail" "$db")
    log "a: final pass exit $rc; due $due received $received distinct $distinct duplicates $dups lost $lost unsent $unsent other $other"
    local result=PASS
    if ((rc != 0 || lost != 0 || unsent != 0 || dups > kills)); then result=FAIL; fi
    ((pending + sending == 0)) || log "a: still pending/sending after $kills kills; the final pass had to finish them"
    record "a. kill -9 during burst" "$kills" "$due" "$received" "$dups" "$lost" "$result"
}

# --- b. SMTP server down for a stretch --------------------------------------
test_server_down() {
    local db dir rc=0 out failed pending passes=0 h result=PASS
    db=$(fresh_db b)
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    if port_open; then log "b: something already listens on $PORT"; exit 1; fi
    out=$(kd run --once --now "$(at 09:00)" 2>>"$dir/run.log") || rc=$?
    log "b: pass with the server down (exit $rc): $out"
    ((rc == 0)) || result=FAIL
    [[ $out == *" 0 sent"* ]] || { log "b: something was sent while the server was down"; result=FAIL; }
    start_sink "$dir/mail"
    # Passes at increasing times until nothing is pending; at most five.
    for h in 10:00 11:00 13:00 17:00 21:00; do
        rc=0
        out=$(kd run --once --now "$(at "$h")" 2>>"$dir/run.log") || rc=$?
        passes=$((passes + 1))
        pending=$(count_status pending)
        log "b: pass at $h (exit $rc): $out; pending $pending"
        ((rc == 0)) || result=FAIL
        ((pending == 0)) && break
    done
    sleep 0.5
    stop_sink
    failed=$(count_status failed)
    read -r due received distinct dups lost unsent other < <(analyse "$dir/mail" "$db")
    log "b: $passes passes after restart; due $due received $received distinct $distinct duplicates $dups lost $lost unsent $unsent failed $failed other $other"
    if ((lost != 0 || unsent != 0 || failed != 0 || dups != 0)); then result=FAIL; fi
    record "b. SMTP server down, then back" "-" "$due" "$received" "$dups" "$lost" "$result"
}

# --- c. a long write transaction in another process -------------------------
test_write_lock() {
    local db dir rc=0 t0 t1 took i result=PASS
    db=$(fresh_db c)
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    start_sink "$dir/mail"
    # Holds the write lock for HOLD_SECS, as a long import or a manual edit would.
    python3 - "$db" "$HOLD_SECS" "$dir/locked" <<'PY' &
import sqlite3, sys, time
db, hold, flag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute("BEGIN IMMEDIATE")
c.execute("UPDATE cases SET lead_inspector_email = lead_inspector_email WHERE case_ref = 'C0'")
open(flag, "w").close()
time.sleep(hold)
c.execute("COMMIT")
c.close()
PY
    HOLDER_PID=$!
    for i in $(seq 1 100); do
        [[ -e $dir/locked ]] && break
        sleep 0.1
    done
    [[ -e $dir/locked ]] || { log "c: the lock holder did not start"; exit 1; }
    t0=$(date +%s.%N)
    kd run --once --now "$(at 09:00)" >>"$dir/run.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    wait "$HOLDER_PID" || { log "c: the lock holder failed"; result=FAIL; }
    HOLDER_PID=""
    took=$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$t0" "$t1")
    sleep 0.5
    stop_sink
    read -r due received distinct dups lost unsent other < <(analyse "$dir/mail" "$db")
    log "c: pass exit $rc after ${took}s (lock held ${HOLD_SECS}s); due $due received $received distinct $distinct duplicates $dups lost $lost unsent $unsent"
    [[ -s $dir/run.log ]] && sed 's/^/c: keydates: /' "$dir/run.log" | tail -n 5 >&2
    if ((rc != 0 || lost != 0 || unsent != 0 || dups != 0)); then result=FAIL; fi
    # It must have waited for the lock rather than failing straight away.
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) - 1.5 else 1)' "$took" "$HOLD_SECS" ||
        { log "c: the pass did not wait for the lock"; result=FAIL; }
    record "c. write lock held ${HOLD_SECS}s" "-" "$due" "$received" "$dups" "$lost" "$result"
}

# --- d. full filesystem under the database ----------------------------------
test_disk_full() {
    local dir mnt db size_kb rc=0 err result=PASS integrity
    dir=$WORK/d
    mnt=$dir/state
    mkdir -p "$mnt"
    # Room for the database and a little more; then filled to the last block.
    size_kb=$(($(stat -c %s "$TEMPLATE_DB") / 1024 + 2048))
    if ! mount -t tmpfs -o "size=${size_kb}k" tmpfs "$mnt" 2>"$dir/mount.err"; then
        log "d: skipped: mounting a tmpfs is not permitted here ($(head -n 1 "$dir/mount.err"))"
        record "d. disk full" "-" "-" "-" "-" "-" "SKIP (mount not permitted)"
        return 0
    fi
    MOUNTED=$mnt
    db=$mnt/keydates.db
    cp "$TEMPLATE_DB" "$db"
    export KEYDATES__DATABASE__URL=$db
    start_sink "$dir/mail"
    dd if=/dev/zero of="$mnt/filler" bs=64k 2>/dev/null || true # stops at ENOSPC
    log "d: $(df -k --output=size,avail "$mnt" | tail -n 1 | awk '{print $1 " KiB tmpfs, " $2 " KiB free"}')"
    kd run --once --now "$(at 09:00)" >"$dir/full.out" 2>"$dir/full.err" || rc=$?
    err=$(tr '\n' ' ' <"$dir/full.err")
    log "d: pass on a full disk: exit $rc: ${err:-(no message)} $(cat "$dir/full.out")"
    if ((rc == 0)); then log "d: expected a non-zero exit on a full disk"; result=FAIL; fi
    if ! grep -qiE 'full|space' "$dir/full.err"; then log "d: the error does not say the disk is full"; result=FAIL; fi
    rm -f "$mnt/filler"
    rc=0
    kd run --once --now "$(at 09:30)" >>"$dir/run.log" 2>&1 || rc=$?
    integrity=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$db")
    sleep 0.5
    stop_sink
    read -r due received distinct dups lost unsent other < <(analyse "$dir/mail" "$db")
    log "d: after freeing space: exit $rc, integrity_check $integrity; due $due received $received distinct $distinct duplicates $dups lost $lost unsent $unsent"
    if ((rc != 0 || lost != 0 || unsent != 0)) || [[ $integrity != ok ]]; then result=FAIL; fi
    # One message per SMTP worker may have gone out just before its row could be marked sent.
    ((dups <= POOL)) || result=FAIL
    cp "$db" "$dir/keydates.db" # for the record, before the tmpfs goes
    umount "$mnt"
    MOUNTED=""
    record "d. disk full, then freed" "-" "$due" "$received" "$dups" "$lost" "$result"
}

test_kill
test_server_down
test_write_lock
test_disk_full

echo
echo "## keydates fault suite"
echo
echo "- $N emails (plan-chase) due on $DAY; SMTP pool size $POOL; sink: smtp-sink on 127.0.0.1:$PORT"
echo
echo "| test | kills | due | received | duplicates | lost | result |"
echo "|---|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${RESULTS[@]}"
if printf '%s\n' "${RESULTS[@]}" | grep -q '| FAIL'; then exit 1; fi
