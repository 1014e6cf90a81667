# FreeSWITCH 1.10.12 for the tests that drain a real media server: built from the release
# archives in ../shared/freeswitch-src (checksums verified) with spandsp and sofia-sip into one
# prefix under the project's cache, keyed by the archives' checksums, modules and flags, so only a
# new machine builds it (about 15 minutes on two cores; the first run says so). A missing build
# dependency is installed, never skipped.
#
# Exports for the tests:
#   PAIRSCALE_FREESWITCH_PREFIX  the installed tree (bin/freeswitch, lib/, mod/, conf/)
#   PAIRSCALE_FREESWITCH_BIN     bin/freeswitch

ps_fs_src=${PAIRSCALE_FREESWITCH_SRC:-$PAIRSCALE_ROOT/../shared/freeswitch-src}
[ -r "$ps_fs_src/SHA256SUMS" ] || die "FreeSWITCH sources not found at $ps_fs_src (set PAIRSCALE_FREESWITCH_SRC)"
(cd "$ps_fs_src" && sha256sum --quiet -c SHA256SUMS) || die "FreeSWITCH archives in $ps_fs_src do not match SHA256SUMS"

# The modules the tests need: the Event Socket, SIP, commands, the XML dialplan and its
# applications, loopback, sound files and tones, and the two loggers.
ps_fs_modules="loggers/mod_console loggers/mod_logfile applications/mod_commands
applications/mod_dptools dialplans/mod_dialplan_xml endpoints/mod_sofia endpoints/mod_loopback
event_handlers/mod_event_socket formats/mod_sndfile formats/mod_tone_stream
formats/mod_native_file"
ps_fs_configure="--disable-libvpx --disable-libyuv --disable-core-odbc-support --disable-core-pgsql-support --without-erlang --without-python3"
# A new build when the archives, the modules or the configure flags change, not for a comment.
ps_fs_key=$(printf '%s\n' "$(cat "$ps_fs_src/SHA256SUMS")" "$ps_fs_modules" "$ps_fs_configure" | sha256sum | cut -c1-16)
export PAIRSCALE_FREESWITCH_PREFIX="$PS_CACHE/freeswitch-$ps_fs_key"
export PAIRSCALE_FREESWITCH_BIN="$PAIRSCALE_FREESWITCH_PREFIX/bin/freeswitch"

ps_fs_build() {
  local prefix=$PAIRSCALE_FREESWITCH_PREFIX build="$PS_CACHE/freeswitch-build" log="$PS_CACHE/freeswitch-build.log"
  local started; started=$(date +%s)
  log "building FreeSWITCH 1.10.12 into $prefix (first run on this machine: about 15 minutes; log: $log)"
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
    printf '%s\n' $ps_fs_modules > modules.conf
    # shellcheck disable=SC2086
    ./configure --prefix="$prefix" $ps_fs_configure
    make -j"$jobs"
    make install
  ) >> "$log" 2>&1 || { tail -40 "$log"; rm -rf "$prefix"; die "the FreeSWITCH build failed (whole log: $log)"; }
  # FreeSWITCH compiles its prefix in: it is built where it stays, and marked whole at the end.
  touch "$prefix/.complete"
  rm -rf "$build"
  log "FreeSWITCH built in $(( $(date +%s) - started )) s"
}

if [ ! -e "$PAIRSCALE_FREESWITCH_PREFIX/.complete" ]; then
  ps_fs_build
fi
"$PAIRSCALE_FREESWITCH_BIN" -version >/dev/null 2>&1 || die "$PAIRSCALE_FREESWITCH_BIN does not run"
log "FreeSWITCH $("$PAIRSCALE_FREESWITCH_BIN" -version | head -1 | tr -s ' ') at $PAIRSCALE_FREESWITCH_PREFIX"
