#!/usr/bin/env bash
# Fault suite for delivery: each test starts from the same planned database
# (N emails due on one day) and checks that every due email reaches a local
# smtp-sink, with duplicates bounded and nothing lost.
#   a. kill -9 of the daemon during a burst, repeatedly
#   b. SMTP server down for a stretch, then back
#   c. another process holding a write transaction for ~10 s
#   d. database on a full filesystem (small tmpfs): full before a pass (d1),
#      filling up during one (d2); then space freed
#   e. a relay that accepts connections and never answers, watched as
#      systemd's watchdog would; then a working relay and a reload
#   f. a relay that refuses keydates' login (535); then the fixed login and
#      a reload
#   g. a relay over STARTTLS that closes the connection at each step: after
#      the final dot without a reply (it kept the message), with 421 in
#      place of the reply, and after the reply; passes one after another
#   h. a relay over STARTTLS that answers the first message of each
#      connection's final dot after SLOW_SECS (default 35)
#
# Env: N (emails, default 2000), PORT (default 2526), POOL (default 4),
#      WATCHDOG_SECS (default 10), HUNG_SECS (default 40),
#      TESTS (which to run, default "a b c d e f"),
#      MAX_KILLS (default 60), HOLD_SECS (default 10),
#      D2_LEAVE_KB (default "2048 1024 256"), D2_SECS (default 15),
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
# Test d2: free space left before the pass (KiB, one try each) and its time limit.
D2_LEAVE_KB=${D2_LEAVE_KB:-"2048 1024 256"}
D2_SECS=${D2_SECS:-15}
# Tests e and f: the watchdog interval systemd would enforce, and how long the
# daemon faces the broken relay.
WATCHDOG_SECS=${WATCHDOG_SECS:-10}
HUNG_SECS=${HUNG_SECS:-40}
TESTS=${TESTS:-"a b c d e f g h"}
SLOW_SECS=${SLOW_SECS:-35}
wanted() { [[ " $TESTS " == *" $1 "* ]]; }

log() { printf '[faults %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- prerequisites ----------------------------------------------------------
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
prepare

# --- workspace and cleanup --------------------------------------------------
WORK=$(mktemp -d /tmp/keydates-faults.XXXXXX)
# smtp-sink drops to "nobody" and must reach its dump folders below.
chmod 755 "$WORK"
# Work with a copy of the binary: a rebuild in the shared target folder during
# the run must not swap the program under test.
cp "$BIN" "$WORK/keydates"
BIN=$WORK/keydates
SINK_PID=""
DAEMON_PID=""
HOLDER_PID=""
RELAY_PID=""
WATCH_PID=""
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
    stop_pid "$RELAY_PID" KILL
    stop_pid "$WATCH_PID" KILL
    stop_sink
    if [[ -n $MOUNTED ]]; then umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export_keydates_env

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
# Rows with status $1 that are due at $2 (UTC, RFC 3339); later ones (the
# plan-deadline emails weeks ahead) do not count.
count_due() {
    kd outbox --status "$1" --format json 2>/dev/null |
        python3 -c 'import json, sys; print(sum(1 for r in json.load(sys.stdin) if r["send_at"] <= sys.argv[1]))' "$2"
}
# Compares the plan-chase rows of database $2 with the messages dumped under
# $1 and prints: due received distinct_ids dup_ids distinct_rcpt dup_rcpt lost
# unsent most_copies (the largest number of messages one recipient got). Duplicates are counted twice: by Message-ID, and by recipient (the
# DCS of each case gets exactly one chase), which also catches a resend under
# a new Message-ID.
analyse() {
    python3 - "$1" "$2" <<'PY'
import collections, json, os, re, sqlite3, sys
dump, db = sys.argv[1], sys.argv[2]
ids, rcpts = collections.Counter(), collections.Counter()
files = 0
for root, _, names in os.walk(dump):
    for name in names:
        files += 1
        with open(os.path.join(root, name), "rb") as f:
            head = f.read().split(b"\n\n", 2)
        # smtp-sink's own records come first, then the message headers.
        text = b"\n".join(head[:2]).replace(b"\r", b"")
        # \s* also crosses a folded header line.
        m = re.search(rb"^message-id:\s*(<[^>]+>)", text, re.I | re.M)
        ids[m.group(1).decode() if m else f"(none {name})"] += 1
        m = re.search(rb"^to:\s*[^\n]*?([^<>\s,]+@[^<>\s,]+)", text, re.I | re.M)
        rcpts[m.group(1).decode().lower() if m else "(none)"] += 1
c = sqlite3.connect(db)
rows = c.execute("SELECT recipients, status FROM outbox WHERE rule_id = 'plan-chase'").fetchall()
due_to = [json.loads(r)["to"][0].lower() for r, _ in rows]
lost = sum(1 for to in due_to if to not in rcpts)
unsent = sum(1 for _, status in rows if status != "sent")
most = max(rcpts.values(), default=0)
print(len(rows), files, len(ids), files - len(ids), len(rcpts), files - len(rcpts), lost, unsent, most)
PY
}

RESULTS=()
# One summary row: test kills due received duplicates dup-by-recipient lost result.
record() { RESULTS+=("| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $8 |"); }

# A broken relay on 127.0.0.1:$PORT: "silent" accepts and never answers;
# "refuse-login" offers AUTH and answers every login with 535.
start_broken_relay() {
    python3 - "$PORT" "$1" <<'PY' &
import socket, sys, threading
port, mode = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(64)
held = []
def refuse(c):
    f = c.makefile("rb")
    c.sendall(b"220 relay.test ESMTP\r\n")
    for line in f:
        cmd = line.upper()
        if cmd.startswith(b"EHLO"):
            c.sendall(b"250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n")
        elif cmd.startswith(b"AUTH"):
            c.sendall(b"535 5.7.8 Authentication credentials invalid\r\n")
        elif cmd.startswith(b"QUIT"):
            c.sendall(b"221 bye\r\n"); break
        else:
            c.sendall(b"530 5.7.0 Authentication required\r\n")
    c.close()
while True:
    c, _ = srv.accept()
    if mode == "silent":
        held.append(c)
    else:
        threading.Thread(target=refuse, args=(c,), daemon=True).start()
PY
    RELAY_PID=$!
    local i
    for i in $(seq 1 50); do port_open && return 0; sleep 0.1; done
    log "the broken relay did not start"; exit 1
}
# A relay over STARTTLS on 127.0.0.1:$PORT (certificate $2/cert.pem) that
# takes any login and writes each message it keeps to a file under $3.
# "tls-close": counting messages over all connections, the 10th, 20th...
# is kept and the connection closed without a reply; the 5th, 15th... is
# answered 421 and the connection closed; after the 7th, 14th... the
# connection is closed after the reply. "slow-reply": the first message on
# each connection is answered after SLOW_SECS.
start_tls_relay() {
    python3 - "$PORT" "$1" "$2" "$3" "$SLOW_SECS" <<'PY' &
import os, socket, ssl, sys, threading, time
port, mode, certdir, dump, slow = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
os.makedirs(dump, exist_ok=True)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{certdir}/cert.pem", f"{certdir}/key.pem")
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port)); srv.listen(64)
lock = threading.Lock(); count = [0]
def keep(data):
    with lock:
        n = count[0] = count[0] + 1
    with open(f"{dump}/{n:07d}.eml", "wb") as f:
        f.write(data)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = c.makefile("rb"); first = True
    def say(line):
        c.sendall(line + b"\r\n")
    say(b"220 relay.test ESMTP")
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.upper()
        if cmd.startswith(b"EHLO"):
            say(b"250-relay.test\r\n250-8BITMIME\r\n" + (b"250-STARTTLS\r\n" if not isinstance(c, ssl.SSLSocket) else b"") + b"250 AUTH PLAIN LOGIN")
        elif cmd.startswith(b"STARTTLS"):
            say(b"220 2.0.0 go ahead")
            c = ctx.wrap_socket(c, server_side=True); f = c.makefile("rb")
        elif cmd.startswith(b"AUTH"):
            say(b"235 2.7.0 ok")
        elif cmd.startswith(b"DATA"):
            say(b"354 go ahead")
            data = []
            while True:
                l = f.readline()
                if not l or l == b".\r\n":
                    break
                data.append(l[1:] if l.startswith(b".") else l)
            if not l:
                return
            body = b"".join(data).replace(b"\r\n", b"\n")
            with lock:
                n = count[0] + 1
            if mode == "tls-close" and n % 10 == 0:
                keep(body)
                with open(f"{dump}.silent", "a") as f:
                    f.write("1\n")
                c.close(); return
            if mode == "tls-close" and n % 10 == 5:
                with lock:
                    count[0] += 1
                say(b"421 4.7.66 Too many connections, throttled"); c.close(); return
            if mode == "slow-reply" and first:
                time.sleep(slow)
            first = False
            keep(body)
            say(b"250 2.0.0 queued")
            if mode == "tls-close" and n % 7 == 0:
                c.close(); return
        elif cmd.startswith(b"QUIT"):
            say(b"221 bye"); c.close(); return
        else:
            say(b"250 ok")
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
    RELAY_PID=$!
    local i
    for i in $(seq 1 50); do port_open && return 0; sleep 0.1; done
    log "the TLS relay did not start"; exit 1
}

# Passes one after another, ten minutes apart (at most 201), against a relay that closes
# its TLS connection at each step ($1 the letter), until nothing is pending:
# every pass ends by itself (no signal), nothing stays `sending`.
test_tls_close() {
    local db dir conf pass rc signalled=0 sending pending result=PASS t0
    db=$(fresh_db g)
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    conf=$dir/keydates.toml
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$dir/key.pem" -out "$dir/cert.pem" \
        -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
    sed -e "s|^dir = \"templates\"|dir = \"$ROOT/config/templates\"|" "$ROOT/config/keydates.toml" >"$conf"
    start_tls_relay tls-close "$dir" "$dir/mail"
    t0=$SECONDS
    for pass in $(seq 0 200); do
        rc=0
        KEYDATES_CONFIG=$conf KEYDATES__MAIL__SMTP__TLS=starttls KEYDATES__MAIL__SMTP__CA_FILE=$dir/cert.pem \
            KEYDATES__SCHEDULE__BACKOFF_INITIAL_SECS=60 KEYDATES__SCHEDULE__BACKOFF_MAX_SECS=300 \
            kd run --once --now "$(date -u -d "$(at 09:00) + $((pass * 10)) minutes" +%Y-%m-%dT%H:%M:%SZ)" >>"$dir/daemon.log" 2>&1 || rc=$?
        if ((rc > 2)); then signalled=$((signalled + 1)); log "g: pass $pass exited $rc"; fi
        sending=$(count_due sending "$(at 09:00)")
        ((sending == 0)) || { log "g: $sending rows left sending after pass $pass"; result=FAIL; }
        pending=$(count_due pending "$(at 09:00)")
        ((pending == 0)) && break
    done
    log "g: $((pass + 1)) passes in $((SECONDS - t0)) s, $signalled ended otherwise than by themselves"
    stop_pid "$RELAY_PID" KILL
    RELAY_PID=""
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail" "$db")
    local failed
    failed=$(count_due failed "$(at 09:00)")
    log "g: due $due received $received duplicates $dup_ids/$dup_rcpts lost $lost unsent $unsent (failed $failed)"
    # A message the relay kept without a reply goes again (the one window
    # for duplicates): nothing else may.
    local silent
    silent=$(cat "$dir/mail.silent" 2>/dev/null | wc -l)
    log "g: the relay kept $silent messages without a reply"
    # An email whose sends broke the connection three times is failed by
    # design (the digest names it); any other unsent one is a fault.
    if ((signalled != 0 || lost != 0 || unsent != failed || dup_rcpts > silent)); then result=FAIL; fi
    record "g. STARTTLS relay closing at each step (1 in 10 after the dot, 1 in 10 with 421, 1 in 7 after the reply), passes 10 min apart; $silent kept without a reply; $failed failed after 3 broken tries" "$((pass + 1)) passes" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
}

# One pass against a relay that answers the first message of each
# connection after SLOW_SECS: each email goes once.
test_slow_reply() {
    local db dir conf t0 elapsed result=PASS rc=0
    db=$(fresh_db h)
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    conf=$dir/keydates.toml
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$dir/key.pem" -out "$dir/cert.pem" \
        -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
    sed -e "s|^dir = \"templates\"|dir = \"$ROOT/config/templates\"|" "$ROOT/config/keydates.toml" >"$conf"
    start_tls_relay slow-reply "$dir" "$dir/mail"
    t0=$SECONDS
    # The shipped timeouts: 300 s a command, 600 s for the final reply.
    KEYDATES_CONFIG=$conf KEYDATES__MAIL__SMTP__TLS=starttls KEYDATES__MAIL__SMTP__CA_FILE=$dir/cert.pem \
        KEYDATES__MAIL__SMTP__TIMEOUT_SECS=300 KEYDATES__MAIL__SMTP__FINAL_REPLY_TIMEOUT_SECS=600 \
        kd run --once --now "$(at 09:00)" >>"$dir/daemon.log" 2>&1 || rc=$?
    elapsed=$((SECONDS - t0))
    KEYDATES_CONFIG=$conf KEYDATES__MAIL__SMTP__TLS=starttls KEYDATES__MAIL__SMTP__CA_FILE=$dir/cert.pem \
        kd run --once --now "$(at 11:00)" >>"$dir/daemon.log" 2>&1 || rc=$?
    stop_pid "$RELAY_PID" KILL
    RELAY_PID=""
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail" "$db")
    log "h: first pass ${elapsed}s; due $due received $received duplicates $dup_ids/$dup_rcpts lost $lost unsent $unsent"
    if ((rc != 0 || lost != 0 || unsent != 0 || dup_rcpts != 0 || dup_ids != 0)); then result=FAIL; fi
    record "h. STARTTLS relay answering each connection's first message after ${SLOW_SECS}s (first pass ${elapsed}s)" "-" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
}

# Listens as systemd's notify socket at $1, writing one line per WATCHDOG=1
# (seconds since the epoch) to $2.
watch_notify() {
    python3 - "$1" "$2" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        if "WATCHDOG=1" in msg:
            out.write(f"{time.time():.3f}\n")
PY
    WATCH_PID=$!
}
# How often systemd would have restarted a daemon whose keepalives are in $1,
# running from $2 to $3 (epoch seconds): once per silence of WATCHDOG_SECS.
restarts_from() {
    python3 - "$1" "$2" "$3" "$WATCHDOG_SECS" <<'PY'
import sys
pings = [float(l) for l in open(sys.argv[1]) if l.strip()]
start, end, limit = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
times = [start] + pings + [end]
print(sum(1 for a, b in zip(times, times[1:]) if b - a > limit))
PY
}

# Runs the daemon against a broken relay ($2: silent or refuse-login) for
# HUNG_SECS, then swaps in a working relay, reloads, and waits for every due
# email. $1 is the test's letter; $3 its row label; $4 the config edit that
# fixes keydates' side (sed expression, may be empty).
test_broken_relay() {
    local letter=$1 mode=$2 label=$3 fix=$4 db dir conf t0 t1 restarts pending i result=PASS
    db=$(fresh_db "$letter")
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    conf=$dir/keydates.toml
    sed -e "s|^dir = \"templates\"|dir = \"$ROOT/config/templates\"|" "$ROOT/config/keydates.toml" >"$conf"
    if [[ $mode == refuse-login ]]; then
        sed -i -e 's|^# username = "keydates"|username = "keydates"|' \
            -e 's|^# allow_plaintext_auth = false|allow_plaintext_auth = true|' "$conf"
        export KEYDATES__MAIL__SMTP__PASSWORD=old-password
    fi
    start_broken_relay "$mode"
    watch_notify "$dir/notify.sock" "$dir/pings"
    sleep 0.3
    t0=$(date +%s.%N)
    # Through `sh -c exec` so that WATCHDOG_PID names the daemon, as systemd sets it.
    NOTIFY_SOCKET=$dir/notify.sock WATCHDOG_USEC=$((WATCHDOG_SECS * 1000000)) \
        KEYDATES__MAIL__SMTP__TIMEOUT_SECS=$((WATCHDOG_SECS * 2)) \
        sh -c 'WATCHDOG_PID=$$ exec "$0" "$@"' "$BIN" --config "$conf" run --now "$DAY" >>"$dir/daemon.log" 2>&1 &
    DAEMON_PID=$!
    sleep "$HUNG_SECS"
    t1=$(date +%s.%N)
    kill -0 "$DAEMON_PID" 2>/dev/null || { log "$letter: the daemon died facing the broken relay"; result=FAIL; }
    restarts=$(restarts_from "$dir/pings" "$t0" "$t1")
    KEYDATES_CONFIG=$conf kd status >"$dir/status.txt" 2>&1 && { log "$letter: status said healthy"; result=FAIL; }
    grep -q "mail relay cannot be used" "$dir/status.txt" || { log "$letter: status did not name the relay"; result=FAIL; }
    log "$letter: after ${HUNG_SECS}s: $(grep -c . "$dir/pings" || true) keepalives, $restarts watchdog restarts; $(grep "mail relay" "$dir/status.txt" | head -1)"
    stop_pid "$RELAY_PID" KILL
    RELAY_PID=""
    start_sink "$dir/mail"
    [[ -n $fix ]] && sed -i -e "$fix" "$conf"
    kill -HUP "$DAEMON_PID"
    # The daemon polls every minute; the reload releases the waiting emails at once.
    for i in $(seq 1 $((CMD_TIMEOUT * 2))); do
        pending=$(count_due pending "$(at 09:00)")
        ((pending == 0)) && break
        sleep 0.5
    done
    stop_pid "$DAEMON_PID" TERM
    DAEMON_PID=""
    stop_pid "$WATCH_PID" KILL
    WATCH_PID=""
    sleep 0.5
    stop_sink
    unset KEYDATES__MAIL__SMTP__PASSWORD
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail" "$db")
    log "$letter: due $due received $received duplicates $dup_ids/$dup_rcpts lost $lost unsent $unsent"
    if ((lost != 0 || unsent != 0 || restarts != 0 || dup_rcpts != 0)); then result=FAIL; fi
    record "$label" "$restarts restarts" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
}

# --- the planned database every test starts from ----------------------------
log "generating $N authorities and cases in $WORK"
write_same_day_cases "$WORK" "$N"
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
confirm_all_chases "$TEMPLATE_DB"
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
    local db dir kills=0 pending=1 sending=0 interrupted=0 wait_s rc started now result=PASS
    db=$(fresh_db a)
    dir=$(dirname "$db")
    export KEYDATES__DATABASE__URL=$db
    now=$(at 09:00)
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
        pending=$(count_due pending "$now")
        sending=$(count_due sending "$now")
        # Each claim cut short can be delivered twice, no more.
        interrupted=$((interrupted + sending))
        log "a: kill $kills after ${wait_s}s: due pending $pending, sending $sending"
        ((pending + sending == 0)) && break
    done
    # One clean pass an hour later, when any interrupted claim is released.
    rc=0
    kd run --once --now "$(at 10:00)" >>"$dir/daemon.log" 2>&1 || rc=$?
    sleep 0.5 # let the sink close its last files
    stop_sink
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail" "$db")
    log "a: $kills kills, $interrupted claims interrupted; final pass exit $rc"
    log "a: due $due received $received distinct Message-IDs $ids (duplicates $dup_ids) distinct recipients $rcpts (duplicates $dup_rcpts) lost $lost unsent $unsent"
    ((dup_ids <= kills)) || log "a: note: more duplicates than kills: with $POOL SMTP workers one kill can cut $POOL sends short"
    if ((rc != 0 || lost != 0 || unsent != 0 || dup_ids > interrupted || dup_rcpts != dup_ids)); then result=FAIL; fi
    record "a. kill -9 during burst" "$kills" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
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
    # Passes at increasing times until nothing due is pending; at most five.
    for h in 10:00 11:00 13:00 17:00 21:00; do
        rc=0
        out=$(kd run --once --now "$(at "$h")" 2>>"$dir/run.log") || rc=$?
        passes=$((passes + 1))
        pending=$(count_due pending "$(at "$h")")
        log "b: pass at $h (exit $rc): $out; due pending $pending"
        ((rc == 0)) || result=FAIL
        ((pending == 0)) && break
    done
    sleep 0.5
    stop_sink
    failed=$(count_due failed "$(at 21:00)")
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail" "$db")
    log "b: $passes passes after restart; due $due received $received duplicates $dup_ids/$dup_rcpts lost $lost unsent $unsent failed $failed"
    if ((lost != 0 || unsent != 0 || failed != 0 || dup_rcpts != 0)); then result=FAIL; fi
    record "b. SMTP server down, then back" "-" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
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
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail" "$db")
    log "c: pass exit $rc after ${took}s (lock held ${HOLD_SECS}s); due $due received $received duplicates $dup_ids/$dup_rcpts lost $lost unsent $unsent"
    { grep -v ' sent reply=' "$dir/run.log" || true; } | cut -c1-300 | sed 's/^/c: keydates: /' | tail -n 5 >&2
    if ((rc != 0 || lost != 0 || unsent != 0 || dup_rcpts != 0)); then result=FAIL; fi
    # It must have waited for the lock rather than failing straight away.
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) - 1.5 else 1)' "$took" "$HOLD_SECS" ||
        { log "c: the pass did not wait for the lock"; result=FAIL; }
    record "c. write lock held ${HOLD_SECS}s" "-" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
}

# --- d. full filesystem under the database ----------------------------------
# Fills the tmpfs at $1, leaving about $2 KiB free.
fill() {
    local mnt=$1 leave_kb=$2 avail_kb
    rm -f "$mnt/filler"
    avail_kb=$(df -k --output=avail "$mnt" | tail -n 1 | tr -d ' ')
    if ((avail_kb > leave_kb)); then
        dd if=/dev/zero of="$mnt/filler" bs=1k count=$((avail_kb - leave_kb)) 2>/dev/null || true
    fi
    # With nothing to leave, take the last blocks too (dd stops at ENOSPC).
    if ((leave_kb == 0)); then dd if=/dev/zero of="$mnt/filler" bs=4k oflag=append conv=notrunc 2>/dev/null || true; fi
    log "d: tmpfs $(df -k --output=size,avail "$mnt" | tail -n 1 | awk '{print $1 " KiB, " $2 " KiB free"}')"
}
# The pass after space came back: must finish, with an intact database.
# Prints nothing; sets rc2, integrity.
pass_after_freeing() {
    local mnt=$1 log_file=$2
    rm -f "$mnt/filler"
    rc2=0
    kd run --once --now "$(at 11:00)" >>"$log_file" 2>&1 || rc2=$?
    integrity=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$mnt/keydates.db")
}
test_disk_full() {
    local dir mnt db size_kb rc=0 err result integrity rc2
    dir=$WORK/d
    mnt=$dir/state
    mkdir -p "$mnt"
    # The database plus room for its write-ahead log to grow (SQLite folds it
    # back at about 4 MB) once space is freed again.
    size_kb=$(($(stat -c %s "$TEMPLATE_DB") / 1024 + 8192))
    if ! mount -t tmpfs -o "size=${size_kb}k" tmpfs "$mnt" 2>"$dir/mount.err"; then
        log "d: skipped: mounting a tmpfs is not permitted here ($(head -n 1 "$dir/mount.err"))"
        record "d. disk full" "-" "-" "-" "-" "-" "-" "SKIP (mount not permitted)"
        return 0
    fi
    MOUNTED=$mnt
    db=$mnt/keydates.db
    export KEYDATES__DATABASE__URL=$db

    # d1: the disk is already full when a pass starts.
    result=PASS
    cp "$TEMPLATE_DB" "$db"
    start_sink "$dir/mail1"
    fill "$mnt" 0
    rc=0
    kd run --once --now "$(at 09:00)" >"$dir/full.out" 2>"$dir/full.err" || rc=$?
    err=$(grep -v ' sent reply=' "$dir/full.err" | tail -n 2 | cut -c1-300 | tr '\n' ' ' || true)
    log "d1: pass on a full disk: exit $rc: ${err:-(no message)} $(cat "$dir/full.out")"
    if ((rc == 0)); then log "d1: expected a non-zero exit on a full disk"; result=FAIL; fi
    if ! grep -qiE 'full|no space' "$dir/full.err"; then
        log "d1: the error does not say the disk is full"
        result="FAIL (error does not say disk full)"
    fi
    pass_after_freeing "$mnt" "$dir/run1.log"
    sleep 0.5
    stop_sink
    read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail1" "$db")
    log "d1: after freeing space: exit $rc2, integrity_check $integrity; due $due received $received duplicates $dup_ids/$dup_rcpts lost $lost unsent $unsent"
    if ((rc2 != 0 || lost != 0 || unsent != 0 || dup_rcpts != 0)) || [[ $integrity != ok ]]; then result=FAIL; fi
    record "d1. disk full before the pass, then freed" "-" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"

    # d2: the disk fills up while a pass is sending. Which statement meets the
    # full disk first depends on the room left, so try several.
    local leave most
    for leave in $D2_LEAVE_KB; do
        result=PASS
        rm -f "$mnt"/keydates.db*
        cp "$TEMPLATE_DB" "$db"
        rm -rf "$dir/mail2"
        start_sink "$dir/mail2"
        fill "$mnt" "$leave"
        rc=0
        timeout "$D2_SECS" "$BIN" run --once --now "$(at 09:00)" >"$dir/fill.out" 2>"$dir/fill.err" || rc=$?
        err=$(grep -v ' sent reply=' "$dir/fill.err" | tail -n 2 | cut -c1-300 | tr '\n' ' ' || true)
        log "d2 ($leave KiB left): pass that fills the disk: exit $rc$( ((rc == 124)) && echo " (still running after ${D2_SECS}s, stopped)"): ${err:-(no message)} $(cat "$dir/fill.out")"
        sleep 0.5
        stop_sink
        read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail2" "$db")
        log "d2 ($leave KiB left): during that pass the sink got $received messages, $ids distinct Message-IDs, $rcpts distinct recipients, up to $most copies to one recipient"
        if ((rc == 0 || rc == 124)); then result="FAIL (no error exit)"; fi
        if ! grep -qiE 'full|no space' "$dir/fill.err"; then
            [[ $result == PASS ]] && result="FAIL (no disk-full error)"
        fi
        start_sink "$dir/mail2"
        pass_after_freeing "$mnt" "$dir/run2.log"
        sleep 0.5
        stop_sink
        read -r due received ids dup_ids rcpts dup_rcpts lost unsent most < <(analyse "$dir/mail2" "$db")
        log "d2 ($leave KiB left): after freeing space: exit $rc2, integrity_check $integrity; due $due received $received distinct Message-IDs $ids (duplicates $dup_ids) distinct recipients $rcpts (duplicates $dup_rcpts) lost $lost unsent $unsent"
        if ((rc2 != 0 || lost != 0 || unsent != 0)) || [[ $integrity != ok ]]; then result=FAIL; fi
        # At most the sends not yet on disk when it filled: per SMTP worker,
        # the one in hand and the one whose outcome was being committed.
        if ((dup_rcpts > 2 * POOL)) && [[ $result == PASS ]]; then result="FAIL (duplicates)"; fi
        record "d2. disk fills during the pass ($leave KiB left), then freed" "-" "$due" "$received" "$dup_ids" "$dup_rcpts" "$lost" "$result"
    done

    cp "$db" "$dir/keydates.db" # for a look afterwards, before the tmpfs goes
    umount "$mnt"
    MOUNTED=""
}

wanted a && test_kill
wanted b && test_server_down
wanted c && test_write_lock
wanted d && test_disk_full
wanted e && test_broken_relay e silent "e. silent relay for ${HUNG_SECS}s (watchdog ${WATCHDOG_SECS}s), then a working one" ""
wanted f && test_broken_relay f refuse-login "f. relay refusing the login (535) for ${HUNG_SECS}s, then the login fixed" 's|^username = "keydates"|# username = "keydates"|'
wanted g && test_tls_close
wanted h && test_slow_reply

echo
echo "## keydates fault suite"
echo
echo "- $N emails (plan-chase) due on $DAY; SMTP pool size $POOL; sink: smtp-sink on 127.0.0.1:$PORT, one file per message"
echo "- duplicates: received minus distinct Message-IDs; by recipient: received minus distinct To addresses (one chase per DCS)"
echo
echo "| test | kills | due | received | duplicates | duplicates by recipient | lost | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${RESULTS[@]}"
if printf '%s\n' "${RESULTS[@]}" | grep -q '| FAIL'; then exit 1; fi
