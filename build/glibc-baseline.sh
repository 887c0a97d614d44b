#!/usr/bin/env bash
# Build the frozen desk against the oldest glibc Debian's mirror still serves: a debootstrap
# chroot of Debian 11 "bullseye" (glibc 2.31). NOT run in CI (about 20-30 min on two cores:
# bullseye's own Python is 3.9, so CPython 3.11 is built from Debian's bookworm source first).
# Run as root on a Debian/Ubuntu host with debootstrap:  bash build/glibc-baseline.sh
# Output: $OUT/counter-app-<version>-linux-x86_64.tar.gz and the highest GLIBC_x.y symbol
# version any file of the bundle needs (the real baseline), printed at the end.
# Then `python build/deb.py --app-dir <chroot>/src/build/work/dist/counter-app` packs it.
set -euo pipefail
SUITE="${SUITE:-bullseye}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
CH="${CHROOT:-/var/tmp/counter-chroot-$SUITE}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/build/dist/$SUITE}"
log() { printf '[glibc-baseline] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "run as root (debootstrap, chroot)"; exit 2; }
if [ ! -x "$CH/bin/sh" ]; then
  log "debootstrap $SUITE into $CH"
  debootstrap --variant=minbase "$SUITE" "$CH" "$MIRROR" >/dev/null
fi
cp /etc/resolv.conf "$CH/etc/resolv.conf"
# A site whose HTTPS goes through an inspecting proxy gives pip its CA (PIP_CERT/SSL_CERT_FILE):
# the chroot's pip needs the same one.
CA_SRC="${PIP_CERT:-${SSL_CERT_FILE:-}}"
CHROOT_CA=""
if [ -n "$CA_SRC" ] && [ -f "$CA_SRC" ]; then
  cp "$CA_SRC" "$CH/etc/ssl/host-ca.pem"
  CHROOT_CA=/etc/ssl/host-ca.pem
fi
mountpoint -q "$CH/proc" || mount -t proc proc "$CH/proc"
mountpoint -q "$CH/dev" || mount --bind /dev "$CH/dev"
trap 'umount "$CH/proc" "$CH/dev" 2>/dev/null || true' EXIT
rm -rf "$CH/src" && mkdir -p "$CH/src" "$OUT"
git -C "$ROOT" archive HEAD | tar -x -C "$CH/src"
# deb-src of the next release only to fetch CPython 3.11's upstream tarball.
echo "deb-src $MIRROR bookworm main" > "$CH/etc/apt/sources.list.d/bookworm-src.list"

chroot "$CH" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive \
  ${CHROOT_CA:+PIP_CERT=$CHROOT_CA} bash -euo pipefail -c '
log() { printf "[chroot] %s\n" "$*" >&2; }
apt-get update -qq
apt-get install -y -qq --no-install-recommends build-essential dpkg-dev ca-certificates git \
  libssl-dev libffi-dev tk-dev tcl-dev libsqlite3-dev zlib1g-dev libbz2-dev liblzma-dev \
  libreadline-dev libgdbm-dev uuid-dev libsane-dev binutils xz-utils >/dev/null
if [ ! -x /opt/py311/bin/python3.11 ]; then
  log "building CPython 3.11 (shared, no PGO)"
  mkdir -p /tmp/py && cd /tmp/py
  [ -f python3.11_*.orig.tar.* ] || apt-get source --download-only -qq python3.11 >/dev/null
  tar -xf python3.11_*.orig.tar.* && cd Python-3.11*/
  ./configure -q --prefix=/opt/py311 --enable-shared LDFLAGS=-Wl,-rpath,/opt/py311/lib >/dev/null
  make -s -j"$(nproc)" >/dev/null 2>&1 && make -s install >/dev/null 2>&1
fi
cd /src
/opt/py311/bin/python3.11 -m venv /src/.venv
/src/.venv/bin/pip install -q --disable-pip-version-check -e ".[build]"
log "building the frozen desk"
/src/.venv/bin/python build/build.py --out /src/out --work /src/build/work --version "${COUNTER_VERSION:-0.0.0+bullseye}"
'
cp "$CH"/src/out/counter-app-*.tar.gz "$OUT/"
need="$(find "$CH/src/build/work/dist/counter-app" -type f \( -name '*.so*' -o -name counter-app \) \
  -exec objdump -T {} + 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
log "bundle in $OUT; highest glibc symbol version needed: $need"
echo "$need"
