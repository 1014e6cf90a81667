# shellcheck shell=bash
# Where FreeSWITCH 1.10.12 is built on this machine, and how: shared by
# tests/setup/40-freeswitch.sh, which builds it when it is missing, and ./sandbox, which only
# looks whether it is there. Sourced after tests/lib/common.sh, never executed; sourcing it
# defines settings and functions and does nothing else.

ps_fs_src=${PAIRSCALE_FREESWITCH_SRC:-$PAIRSCALE_ROOT/../shared/freeswitch-src}

# The modules the tests need: the Event Socket, SIP, commands, the XML dialplan and its
# applications, loopback, sound files and tones, and the two loggers.
ps_fs_modules="loggers/mod_console loggers/mod_logfile applications/mod_commands
applications/mod_dptools dialplans/mod_dialplan_xml endpoints/mod_sofia endpoints/mod_loopback
event_handlers/mod_event_socket formats/mod_sndfile formats/mod_tone_stream
formats/mod_native_file"
ps_fs_configure="--disable-libvpx --disable-libyuv --disable-core-odbc-support --disable-core-pgsql-support --without-erlang --without-python3"

# ps_fs_prefix: prints the folder this machine's build of these archives, modules and flags
# goes to (or went to), $PS_CACHE/freeswitch-<key>. Fails, printing nothing, when the sources
# are not there. Neither builds nor checks the archives.
ps_fs_prefix() {
  [ -r "$ps_fs_src/SHA256SUMS" ] || return 1
  # A new build when the archives, the modules or the configure flags change, not for a comment.
  local key
  key=$(printf '%s\n' "$(cat "$ps_fs_src/SHA256SUMS")" "$ps_fs_modules" "$ps_fs_configure" | sha256sum | cut -c1-16)
  printf '%s\n' "$PS_CACHE/freeswitch-$key"
}

# ps_fs_built PREFIX: whether a whole build is there (the build marks its tree at the very end).
ps_fs_built() {
  [ -e "$1/.complete" ] && [ -x "$1/bin/freeswitch" ]
}

# ps_fs_build PREFIX: builds FreeSWITCH with spandsp and sofia-sip into PREFIX from the
# (checked) archives, installing missing build dependencies; says how long it took.
ps_fs_build() {
  local prefix=$1 build="$PS_CACHE/freeswitch-build" log="$PS_CACHE/freeswitch-build.log"
  local started; started=$(date +%s)
  log "building FreeSWITCH 1.10.12 into $prefix (first run on this machine: about 6 minutes on two cores; log: $log)"
  apt_ensure build-essential autoconf automake libtool libtool-bin pkg-config \
    libssl-dev libcurl4-openssl-dev libpcre3-dev libsqlite3-dev libedit-dev libspeex-dev \
    libspeexdsp-dev libsndfile1-dev libldns-dev libjpeg-dev libtiff-dev uuid-dev zlib1g-dev \
    libopus-dev yasm nasm xz-utils
  rm -rf "$build" "$prefix" && mkdir -p "$build"
  : > "$log"
  local jobs; jobs=$(nproc)
  (
    set -e
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    export CPPFLAGS="-I$prefix/include" LDFLAGS="-L$prefix/lib -Wl,-rpath,$prefix/lib"
    cd "$build"
    for a in spandsp-0c7bcebef4f0 sofia-sip-1.13.17 freeswitch-1.10.12; do tar -xJf "$ps_fs_src/$a.tar.xz"; done
    for d in spandsp-* sofia-sip-*; do
      (cd "$d" && { [ -x ./bootstrap.sh ] && ./bootstrap.sh || autoreconf -fi; } \
        && ./configure --prefix="$prefix" --disable-static \
        && make -j"$jobs" && make install)
    done
    cd freeswitch-1.10.12
    ./bootstrap.sh -j
    # shellcheck disable=SC2086 # one module a line: split on purpose
    printf '%s\n' $ps_fs_modules > modules.conf
    # shellcheck disable=SC2086
    ./configure --prefix="$prefix" $ps_fs_configure
    make -j"$jobs"
    make install
  ) >> "$log" 2>&1 || { tail -40 "$log"; rm -rf "$prefix"; die "the FreeSWITCH build failed (whole log: $log)"; }
  # FreeSWITCH compiles its prefix in: it is built where it stays, and marked whole at the end.
  touch "$prefix/.complete"
  rm -rf "$build"
  local took=$(( $(date +%s) - started ))
  log "FreeSWITCH built in $(( took / 60 )) min $(( took % 60 )) s (once on this machine: later runs reuse it)"
}

# ps_fs_check PREFIX: the build at PREFIX runs; says which it is.
ps_fs_check() {
  "$1/bin/freeswitch" -version >/dev/null 2>&1 || die "$1/bin/freeswitch does not run"
  log "FreeSWITCH $("$1/bin/freeswitch" -version | head -1 | tr -s ' ') at $1"
}

# ps_fs_build_in_background PREFIX: ps_fs_build in a background job, its output kept until
# ps_fs_wait shows it. A run that ends before it stops the job and every process under it
# (configure, make, the compilers), so that no half build goes on writing into the cache.
ps_fs_build_in_background() {
  PS_FS_BUILD_PREFIX=$1
  PS_FS_BUILD_OUT="$PS_WORK/freeswitch-build.out"
  log "building FreeSWITCH in the background (first run on this machine; the checks that run it wait for it)"
  (ps_fs_build "$1") > "$PS_FS_BUILD_OUT" 2>&1 &
  PS_FS_BUILD_PID=$!
  on_cleanup "stop the FreeSWITCH build" ps_fs_stop_build
}

# ps_fs_stop_build: the background build and its processes, if it is still this run's.
ps_fs_stop_build() {
  [ -n "${PS_FS_BUILD_PID:-}" ] || return 0
  ps_fs_kill_tree "$PS_FS_BUILD_PID"
}

# ps_fs_kill_tree PID: TERM to PID and its descendants, parents first so none starts another.
ps_fs_kill_tree() {
  local child
  kill -STOP "$1" 2>/dev/null || return 0
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do ps_fs_kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null
  kill -CONT "$1" 2>/dev/null || true
}

# ps_fs_wait: returns once this run's FreeSWITCH is built (at once when it was there before);
# ends the run if the build failed, with what it printed.
ps_fs_wait() {
  [ -n "${PS_FS_BUILD_PID:-}" ] || return 0
  local rc=0 pid=$PS_FS_BUILD_PID
  PS_FS_BUILD_PID=
  kill -0 "$pid" 2>/dev/null && log "waiting for the FreeSWITCH build"
  wait "$pid" || rc=$?
  cat "$PS_FS_BUILD_OUT"
  [ "$rc" = 0 ] && ps_fs_built "$PS_FS_BUILD_PREFIX" || die "the FreeSWITCH build failed (status $rc)"
  ps_fs_check "$PS_FS_BUILD_PREFIX"
}
