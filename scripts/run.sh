#!/usr/bin/env bash
# One entry point for people and CI: sets up what is missing, then runs the demo or the tests.
#   scripts/run.sh demo        server with the seeded demo hall + the desk, signed in
#   scripts/run.sh test        every test (starts Xvfb, PostgreSQL and a Secret Service itself)
#   scripts/run.sh test-heavy  the full-size fault-injection runs (10,000 ratings, 200 kill -9; ~10 min)
#   scripts/run.sh bench       benchmarks (JSON lines)
#   scripts/run.sh setup       only install
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${COUNTER_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
log() { printf '[run.sh] %s\n' "$*" >&2; }

APT_BASE=(python3 python3-venv python3-tk python3-dev gcc fonts-wqy-microhei sane-utils libsane1 libsane-dev espeak-ng)
APT_TEST=(xvfb xauth xdotool dbus dbus-x11 gnome-keyring libsecret-tools postgresql zbar-tools poppler-utils imagemagick chromium nginx lintian systemd)

apt_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

ensure_apt() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing
  missing="$(apt_missing "$@")"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = "0" ]; then
    log "installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    log "missing Debian packages (run as root or: sudo apt-get install $missing)"
  fi
}

ensure_venv() {
  if ! "$PY" -c 'import tkinter, venv' 2>/dev/null; then
    log "$PY lacks tkinter or venv"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.counter-installed" want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing Python packages into $VENV"
    if ! { "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip \
           && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"; } \
           >"$VENV/pip-install.log" 2>&1; then
      tail -30 "$VENV/pip-install.log" >&2
      log "pip install failed (full log: $VENV/pip-install.log)"
      exit 1
    fi
    echo "$want" > "$stamp"
  fi
}

start_postgres() {
  # A private PostgreSQL on a temp folder and port, run as the postgres user; stopped on exit.
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bindir" ]; then log "PostgreSQL not installed: postgres tests will fail"; return 0; fi
  PGTMP="$(mktemp -d /tmp/counter-pg.XXXXXX)"
  chmod 755 "$PGTMP"
  local port=$((20000 + RANDOM % 20000))
  if [ "$(id -u)" = "0" ]; then
    chown postgres "$PGTMP"
    RUNPG=(runuser -u postgres --)
  else
    RUNPG=()
  fi
  "${RUNPG[@]}" "$bindir/initdb" -D "$PGTMP/data" -U postgres -A trust >/dev/null
  "${RUNPG[@]}" "$bindir/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" -w \
    -o "-p $port -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  export HALL_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  PG_BINDIR="$bindir"
  log "PostgreSQL on 127.0.0.1:$port"
}

stop_postgres() {
  if [ -n "${PGTMP:-}" ]; then
    "${RUNPG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGTMP"
  fi
}

cmd="${1:-demo}"; shift || true
case "$cmd" in
  setup)
    ensure_apt "${APT_BASE[@]}" "${APT_TEST[@]}"
    ensure_venv
    ;;
  demo)
    ensure_apt "${APT_BASE[@]}"
    ensure_venv
    exec "$VENV/bin/counter-app" demo "$@"
    ;;
  test|test-heavy)
    if [ "$cmd" = test-heavy ]; then
      export OUTBOX_KILL_ROUNDS="${OUTBOX_KILL_ROUNDS:-200}" OUTBOX_FAULT_RATINGS="${OUTBOX_FAULT_RATINGS:-10000}"
      export OUTBOX_FAULT_CLIENT_KILLS="${OUTBOX_FAULT_CLIENT_KILLS:-20}" OUTBOX_OUTAGE_RATINGS="${OUTBOX_OUTAGE_RATINGS:-5000}"
      set -- -m heavy "$@"
    fi
    ensure_apt "${APT_BASE[@]}" "${APT_TEST[@]}"
    ensure_venv
    trap stop_postgres EXIT
    start_postgres
    export COUNTER_REQUIRE_DISPLAY=1 COUNTER_REQUIRE_PG=1
    # A fresh HOME: a real Secret Service (gnome-keyring) on a private D-Bus session, and no
    # leftovers from the developer's own config.
    TEST_HOME="$(mktemp -d /tmp/counter-home.XXXXXX)"
    export COUNTER_ARTIFACTS="${COUNTER_ARTIFACTS:-$ROOT/test-artifacts}"
    mkdir -p "$COUNTER_ARTIFACTS"
    # pytest's own exit code is written to a file: the D-Bus wrapper's status is not trusted
    # alone (a wrapper that dies must not hide or fake a result). SIGPIPE is ignored so a
    # closed pipe in some helper process (browser, keyring daemon) cannot kill the run.
    RCFILE="$TEST_HOME/pytest-rc"
    export NO_AT_BRIDGE=1  # Chromium: no accessibility bus to spawn inside the test session
    trap '' PIPE
    set +e
    HOME="$TEST_HOME" dbus-run-session -- bash -c '
      eval "$(printf pw | gnome-keyring-daemon --unlock --components=secrets 2>/dev/null)" || true
      export GNOME_KEYRING_CONTROL SSH_AUTH_SOCK
      "$0" -m pytest --durations=15 "$@"
      echo $? > "'"$RCFILE"'"
    ' "$VENV/bin/python" "$@"
    wrapper_rc=$?
    set -e
    if [ -f "$RCFILE" ]; then rc="$(cat "$RCFILE")"; else
      log "pytest did not finish (wrapper exit $wrapper_rc)"; rc=1
    fi
    rm -rf "$TEST_HOME"
    exit "$rc"
    ;;
  bench)
    ensure_apt "${APT_BASE[@]}" "${APT_TEST[@]}"
    ensure_venv
    trap stop_postgres EXIT
    start_postgres
    exec "$VENV/bin/python" -m bench "$@"
    ;;
  *)
    echo "usage: scripts/run.sh demo|test|test-heavy|bench|setup" >&2; exit 2;;
esac
