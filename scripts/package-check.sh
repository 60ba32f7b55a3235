#!/usr/bin/env bash
# Builds the Debian package and installs it into a throwaway Debian root
# (debootstrap, chroot): every file where Debian's conventions put it, the
# config a conffile, the unit enabled but not started and clean under
# `systemd-analyze verify`, `check-config` passing with the shipped config,
# state kept on remove and deleted on purge.
#
# Env: ROOT_DIR (default: a new folder under /tmp; an existing root is reused),
#      MIRROR (default http://deb.debian.org/debian). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[package %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

log "building the package"
deb=$(cargo deb 2>/dev/null | tail -n 1)
[[ -f $deb ]] || fail "cargo deb did not give a package"
log "package: $deb"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for path in ./usr/bin/keydates ./usr/bin/keydates-admin ./etc/keydates/keydates.toml \
    ./etc/keydates/templates/plan-chase.txt ./etc/keydates/templates/documents/dcs-record.md \
    ./usr/share/doc/keydates/README.md; do
    grep -qx "$path" <<<"$contents" || fail "$path is not in the package"
done
unit=$(grep -E '^\./(usr/)?lib/systemd/system/keydates\.service$' <<<"$contents" | head -n 1)
[[ -n $unit ]] || fail "the unit is not in the package"
conffiles=$(dpkg-deb -f "$deb" Package >/dev/null && dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
grep -qx /etc/keydates/keydates.toml <<<"$conffiles" || fail "keydates.toml is not a conffile"
grep -qx /etc/keydates/templates/plan-chase.txt <<<"$conffiles" || fail "the templates are not conffiles"
postinst=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst)
grep -q "deb-systemd-helper enable keydates.service" <<<"$postinst" || fail "postinst does not enable the unit"
if grep -qE "deb-systemd-invoke (start|restart) " <<<"$postinst"; then fail "postinst starts the service"; fi

root=${ROOT_DIR:-$(mktemp -d /tmp/keydates-root.XXXXXX)}
# A root made here goes when the check ends; one named by ROOT_DIR stays.
made_here=$([[ -z ${ROOT_DIR:-} ]] && echo yes || echo no)
cleanup() {
    umount "$root/proc" 2>/dev/null || true
    if [[ $made_here == yes ]] && ! mountpoint -q "$root/proc"; then rm -rf "$root"; fi
}
trap cleanup EXIT
if [[ ! -x $root/usr/bin/apt-get ]]; then
    log "making a Debian root in $root"
    debootstrap --variant=minbase bookworm "$root" "${MIRROR:-http://deb.debian.org/debian}" >/dev/null
fi
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/keydates.deb"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

log "installing into the root"
in_root apt-get update -qq
# A reused root starts clean.
in_root apt-get purge -y -qq keydates >/dev/null 2>&1 || true
in_root apt-get install -y -qq /tmp/keydates.deb >"$root/tmp/install.log" 2>&1 ||
    { cat "$root/tmp/install.log" >&2; fail "the package does not install"; }
grep -q "enabled, but not started" "$root/tmp/install.log" || fail "no word to the admin that the service waits"
[[ $(in_root systemctl is-enabled keydates) == enabled ]] || fail "the unit is not enabled"
[[ -x $root/usr/bin/keydates ]] || fail "/usr/bin/keydates missing after install"
in_root keydates --config /etc/keydates/keydates.toml check-config || fail "check-config fails on the shipped config"
in_root systemd-analyze verify "/${unit#./}" 2>"$root/tmp/verify.log" || true
if grep -v -e '^$' "$root/tmp/verify.log" | grep -q keydates; then
    cat "$root/tmp/verify.log" >&2
    fail "systemd-analyze verify complains about the unit"
fi

log "an admin's edit survives a reinstall; remove keeps the state, purge deletes it"
echo "# edited by the admin" >>"$root/etc/keydates/keydates.toml"
mkdir -p "$root/var/lib/private/keydates"
echo state >"$root/var/lib/private/keydates/keydates.db"
in_root apt-get install -y -qq --reinstall /tmp/keydates.deb >/dev/null 2>&1
grep -q "edited by the admin" "$root/etc/keydates/keydates.toml" || fail "a reinstall lost the admin's edit"
in_root apt-get remove -y -qq keydates >/dev/null 2>&1
[[ -f $root/var/lib/private/keydates/keydates.db ]] || fail "remove deleted the state"
in_root apt-get purge -y -qq keydates >/dev/null 2>&1
[[ ! -e $root/var/lib/private/keydates ]] || fail "purge kept the state"
[[ ! -e $root/etc/keydates/keydates.toml ]] || fail "purge kept the config"
log "PASS: files, conffiles, enabled-not-started, check-config, systemd-analyze verify, remove and purge"
