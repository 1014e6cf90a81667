# Shared by tests/run, its steps and the sandbox. Sourced, never executed.
# Everything it starts is recorded by PID in $PS_WORK/pids and stopped by ps_cleanup.

: "${PAIRSCALE_ROOT:?}"
export PS_CACHE=${PAIRSCALE_CACHE:-$HOME/.cache/pairscale}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PS_CACHE/target}
export PS_WORK=${PS_WORK:-$(mktemp -d /tmp/pairscale-test.XXXXXX)}
mkdir -p "$PS_CACHE" "$PS_WORK"
: > "$PS_WORK/pids"
PS_FAILED=()
PS_SKIPPED=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }
section() { printf '\n==> %s\n' "$*"; }
skip() { PS_SKIPPED+=("$1: $2"); log "SKIPPED $1: $2"; }
fail() { PS_FAILED+=("$1"); log "FAILED $1"; }

# run_check NAME CMD...: runs a check, records a failure without stopping the suite.
run_check() {
  local name=$1; shift
  log "check: $name"
  if "$@"; then log "ok: $name"; else fail "$name"; fi
}

# Remember a background process so that ps_cleanup stops it (TERM, then KILL after 2 s; its
# children are its own to stop).
track_pid() { echo "$1 ${2:-}" >> "$PS_WORK/pids"; }

# on_cleanup WHAT CMD...: run CMD when the run ends, after its processes are stopped.
PS_CLEANUPS=()
on_cleanup() {
  local what=$1
  shift
  PS_CLEANUPS+=("$what")
  eval "ps_cleanup_${#PS_CLEANUPS[@]}() { $(printf '%q ' "$@"); }"
}

ps_cleanup() {
  local rc=$?
  if [ -s "$PS_WORK/pids" ]; then
    tac "$PS_WORK/pids" | while read -r pid name; do
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    done
  fi
  local i
  for i in $(seq "${#PS_CLEANUPS[@]}" -1 1); do
    "ps_cleanup_$i" >/dev/null 2>&1 || echo "cleanup failed: ${PS_CLEANUPS[$((i - 1))]}" >&2
  done
  [ "${PS_KEEP_WORK:-0}" = 1 ] || rm -rf "$PS_WORK"
  exit $rc
}

ps_summary() {
  local started=$1
  section "summary ($(( $(date +%s) - started )) s)"
  local s
  for s in "${PS_SKIPPED[@]+"${PS_SKIPPED[@]}"}"; do echo "skipped: $s"; done
  if [ -s "$PS_WORK/kamailio-restarts" ]; then
    echo "noticed: a shared test Kamailio exited during the run and was started again:"
    cat "$PS_WORK/kamailio-restarts"
  fi
  if [ ${#PS_FAILED[@]} -gt 0 ]; then
    for s in "${PS_FAILED[@]}"; do echo "failed: $s"; done
    echo "${#PS_FAILED[@]} check(s) failed"
    exit 1
  fi
  echo "all checks passed"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: poll until URL answers (any HTTP status).
wait_http() {
  local url=$1 secs=${2:-30} i
  for ((i = 0; i < secs * 5; i++)); do
    curl -s -o /dev/null "$url" && return 0
    sleep 0.2
  done
  return 1
}

# venv NAME REQUIREMENTS_FILE: a cached virtualenv per requirements file, rebuilt when the
# pinned list changes. Prints nothing; sets VENV_BIN.
venv() {
  local name=$1 req=$2 dir="$PS_CACHE/venv-$1" sum
  sum=$(sha256sum "$req" | cut -c1-16)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.req-sum" 2>/dev/null)" != "$sum" ]; then
    log "creating venv $name from $(basename "$req")"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$sum" > "$dir/.req-sum"
  fi
  VENV_BIN="$dir/bin"
}

# apt_ensure PKG...: install Debian packages that are missing (one apt-get update per run).
apt_ensure() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  # Another apt or dpkg at work (a second test run, the machine's own updates) holds the lock
  # for a while: wait for it rather than fail the run.
  local wait=(-o DPkg::Lock::Timeout=600)
  if [ ! -e "$PS_WORK/.apt-updated" ]; then
    apt-get "${wait[@]}" update -qq >/dev/null && touch "$PS_WORK/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
