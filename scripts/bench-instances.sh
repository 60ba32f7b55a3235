#!/usr/bin/env bash
# Delivery throughput on PostgreSQL with one and with two instances: N plan
# chases due at once, each instance a `run --once` pass with mail.smtp.pool_size
# workers, all sending to one smtp-sink. Prints a markdown table of medians.
#
# Env: N (emails, default 10000), INSTANCES (default "1 2"), POOL (default 4),
#      RUNS (default 3), PORT (smtp-sink, default 2525),
#      KEYDATES_BIN (default target/release/keydates). Needs root (the
#      PostgreSQL cluster runs as the postgres user).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${N:-10000}
INSTANCES=${INSTANCES:-"1 2"}
POOL=${POOL:-4}
RUNS=${RUNS:-3}
PORT=${PORT:-2525}
BIN=${KEYDATES_BIN:-$ROOT/target/release/keydates}

log() { printf '[instances %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/sink.sh
source "$ROOT/scripts/sink.sh"
prepare
PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin | sort -V | tail -n 1)
if [[ -z $PGBIN ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin | sort -V | tail -n 1)
fi

WORK=$(mktemp -d /tmp/keydates-instances.XXXXXX)
chown postgres "$WORK"
cp "$BIN" "$WORK/keydates"
BIN=$WORK/keydates
PGPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
    stop_sink
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting PostgreSQL on 127.0.0.1:$PGPORT"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
    -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1" start >/dev/null
psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
url() { echo "postgres://postgres@127.0.0.1:$PGPORT/$1"; }

export_keydates_env
kd() { "$BIN" "$@"; }

log "generating $N authorities and cases; planning them into a template database"
write_same_day_cases "$WORK" "$N"
psql -d postgres -c "CREATE DATABASE template_kd"
export KEYDATES__DATABASE__URL
KEYDATES__DATABASE__URL=$(url template_kd)
kd import authorities "$WORK/authorities.csv" >/dev/null
kd import cases "$WORK/cases.csv" >/dev/null
DAY=$(kd date 2026-09-01 "50 working days")
PREV=$(date -d "$DAY - 1 day" +%F)
KEYDATES__MAIL__TRANSPORT=file kd run --once --now "$PREV" >/dev/null
# As `keydates confirm ID` does for each held chase.
psql -d template_kd -c "UPDATE outbox SET status = 'pending', confirmed_by = 'bench' WHERE status = 'awaiting_confirmation'"
DUE=$(psql -d template_kd -c "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND rule_id = 'plan-chase'")
log "$DUE plan chases due on $DAY"

export KEYDATES__MAIL__TRANSPORT=smtp
declare -A TIMES RATES RECV SENT DUPES SPLIT
for k in $INSTANCES; do
    for ((run = 1; run <= RUNS; run++)); do
        db=run_${k}_$run
        psql -d postgres -c "CREATE DATABASE $db TEMPLATE template_kd"
        KEYDATES__DATABASE__URL=$(url "$db")
        start_sink "$WORK/sink.txt"
        pids=()
        t0=$(now_s)
        for ((i = 1; i <= k; i++)); do
            KEYDATES__LOG__LEVEL=info kd run --once --now "$DAY" >/dev/null 2>"$WORK/i$i.log" &
            pids+=($!)
        done
        for pid in "${pids[@]}"; do wait "$pid"; done
        t1=$(now_s)
        sleep 0.3
        stop_sink
        s=$(elapsed "$t0" "$t1")
        recv=$(sink_count "$WORK/sink.txt")
        sent=$(psql -d "$db" -c "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND rule_id = 'plan-chase'")
        split=""
        for ((i = 1; i <= k; i++)); do
            split+="$(grep -c '}: sent reply=' "$WORK/i$i.log" || true)/"
        done
        rate=$(python3 -c 'import sys; print(f"{int(sys.argv[1]) / float(sys.argv[2]):.1f}")' "$sent" "$s")
        log "$k instance(s) run $run: ${s}s, sink $recv, outbox sent $sent, per instance ${split%/} -> $rate msg/s"
        TIMES[$k]+="$s "
        RATES[$k]+="$rate "
        RECV[$k]+="$recv "
        SENT[$k]+="$sent "
        SPLIT[$k]+="${split%/} "
        DUPES[$k]+="$((recv - sent)) "
        psql -d postgres -c "DROP DATABASE $db"
    done
done

echo
echo "## keydates on PostgreSQL: one and two instances"
echo
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on the same machine"
echo "- emails due: $DUE, pool_size $POOL per instance, runs: $RUNS"
echo
echo "| instances | seconds (median) | msg/s (median) | sink received per run | outbox sent per run | sink minus outbox per run | sent per instance per run |"
echo "|---:|---:|---:|---|---|---|---|"
for k in $INSTANCES; do
    # shellcheck disable=SC2086 # word splitting of the collected figures is wanted
    echo "| $k | $(median ${TIMES[$k]}) | $(median ${RATES[$k]}) | ${RECV[$k]% } | ${SENT[$k]% } | ${DUPES[$k]% } | ${SPLIT[$k]% } |"
done
