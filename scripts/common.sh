# Shared by bench-delivery.sh and faults.sh (sourced, not run). Expects ROOT
# and a log function.

# Postfix's smtp-sink and smtp-source, without configuring a running MTA.
need_postfix_tools() {
    [[ -x /usr/sbin/smtp-sink && -x /usr/sbin/smtp-source ]] && return 0
    log "installing postfix for smtp-sink and smtp-source"
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
}

# GNU time, for a process's peak resident memory.
need_gnu_time() {
    [[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
}

need_python() {
    command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
}

# Everything the scripts need before they start.
prepare() {
    need_postfix_tools
    need_python
    need_gnu_time
    build_unless_named
}

# Build unless a binary was named, so the run measures the current source.
build_unless_named() {
    if [[ -z ${KEYDATES_BIN:-} ]]; then
        log "building keydates"
        (cd "$ROOT" && nice cargo build --release)
    fi
}

# N authorities with one case each, all reports received on 2026-09-01, so
# that N plan chases fall due on the same day. Writes DIR/authorities.csv and
# DIR/cases.csv.
write_same_day_cases() {
    local dir=$1 n=$2 i
    {
        echo "code,name,region,dcs_name,dcs_email,coordinator_email"
        for ((i = 0; i < n; i++)); do
            echo "A$i,Authority $i Council,london,Director $i,dcs$i@la$i.example.gov.uk,"
        done
    } >"$dir/authorities.csv"
    {
        echo "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email"
        for ((i = 0; i < n; i++)); do
            echo "C$i,A$i,requires_improvement,2026-09-01,,hmi@ofsted.example.gov.uk,"
        done
    } >"$dir/cases.csv"
}

# The plan chases wait for the lead inspector's and SHMI's confirmation
# (000 §28). Confirms every held one in database $1 at once, as
# `keydates confirm ID` does for one.
confirm_all_chases() {
    python3 - "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE outbox SET status = 'pending', confirmed_by = 'scripts'"
          " WHERE rule_id = 'plan-chase' AND status = 'awaiting_confirmation'")
c.commit()
c.close()
PY
}

# keydates' settings for a run against the sink on 127.0.0.1:$PORT, from the
# shipped config, with its spool in $WORK and $POOL sending workers.
export_keydates_env() {
    export KEYDATES_CONFIG=$ROOT/config/keydates.toml
    export KEYDATES__MAIL__SPOOL_DIR=$WORK/spool
    export KEYDATES__MAIL__SMTP__HOST=127.0.0.1
    export KEYDATES__MAIL__SMTP__PORT=$PORT
    export KEYDATES__MAIL__SMTP__TLS=none
    export KEYDATES__MAIL__SMTP__POOL_SIZE=$POOL
    export KEYDATES__LOG__LEVEL=${KEYDATES__LOG__LEVEL:-warn}
    export KEYDATES__WEB__LISTEN=
}
