# Shared by the delivery benchmarks (sourced, not run): a counting smtp-sink
# on 127.0.0.1:$PORT, and the arithmetic of their reports. Expects a log
# function.

SINK_PID=""

# Starts a counting sink; its counters go to $1.
start_sink() {
    local out=$1
    # -u: smtp-sink refuses to run as root without dropping privileges.
    smtp-sink -u nobody -c -m 512 "127.0.0.1:$PORT" 1024 >"$out" 2>&1 &
    SINK_PID=$!
    local i
    for i in $(seq 1 50); do
        if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$PORT" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "smtp-sink did not start on 127.0.0.1:$PORT"; cat "$out" >&2; exit 1
}

stop_sink() {
    if [[ -n $SINK_PID ]] && kill -0 "$SINK_PID" 2>/dev/null; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    SINK_PID=""
}

# Last "mesg=" counter the sink printed: messages fully received.
sink_count() {
    local n
    n=$(tr '\r' '\n' <"$1" | grep -o 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2 || true)
    echo "${n:-0}"
}

now_s() { date +%s.%N; }
# Seconds between two date +%s.%N stamps.
elapsed() { python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }
rate() { python3 -c 'import sys; n, t = int(sys.argv[1]), float(sys.argv[2]); print(f"{n / t:.1f}" if t > 0 else "inf")' "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=int((NR+1)/2); if (NR%2) print a[m]; else printf "%.3f\n", (a[m]+a[m+1])/2}'; }
