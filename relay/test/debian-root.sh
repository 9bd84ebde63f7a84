#!/usr/bin/env bash
# Build the test suite's Debian root filesystem once: a debootstrap of Debian 12 (bookworm,
# minbase, plus sudo) from Debian's archive, whose apt sources include bookworm-security.
# debootstrap installs from the main suite only, so every security update published since
# the last point release is pending inside it: real updates for real apt, which tests apply
# to a throw-away overlay of this root (relay/test/debian-root.ts), never to this machine.
# Usage: debian-root.sh DIR   (idempotent: does nothing when DIR is complete; run under flock)
set -euo pipefail
dir=${1:?usage: debian-root.sh DIR}
mirror=${PATCHMAN_TEST_MIRROR:-http://deb.debian.org/debian}
security=${PATCHMAN_TEST_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
[ -e "$dir/.patchman-ready" ] && exit 0
command -v debootstrap >/dev/null || { echo "debian-root: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
tmp="$dir.building"
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase --include=sudo bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
cat >"$tmp/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $security bookworm-security main
SOURCES
cp /etc/resolv.conf "$tmp/etc/resolv.conf"
# services never start inside a test root (policy-rc.d, as Debian's chroot builders do)
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d" && chmod 755 "$tmp/usr/sbin/policy-rc.d"
chroot "$tmp" apt-get update -qq
chroot "$tmp" apt-get clean
pending=$(LC_ALL=C chroot "$tmp" apt-get -s dist-upgrade | grep -c '^Inst ' || true)
[ "$pending" -gt 0 ] || { echo "debian-root: no pending updates in the new root (has bookworm-security nothing newer?)" >&2; exit 1; }
touch "$tmp/.patchman-ready"
rm -rf "$dir" && mv "$tmp" "$dir" && rm -f "$tmp.log"
echo "debian-root: $dir built with $pending pending updates"
