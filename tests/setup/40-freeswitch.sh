# shellcheck shell=bash
# FreeSWITCH 1.10.12 for the tests that drain a real media server (and for ./sandbox --freeswitch):
# built from the release archives in ../shared/freeswitch-src (checksums verified) with spandsp
# and sofia-sip into one prefix under the project's cache, keyed by the archives' checksums,
# modules and flags, so only a new machine builds it (about 6 minutes on two cores, in the
# background while the first checks run; the first run says so, and how long it took). A
# missing build dependency is installed, never skipped. Where the build goes and how it is
# made: tests/lib/freeswitch.sh, which ./sandbox reads too.
#
# Exports for the tests:
#   PAIRSCALE_FREESWITCH_PREFIX  the installed tree (bin/freeswitch, lib/, mod/, conf/)
#   PAIRSCALE_FREESWITCH_BIN     bin/freeswitch

# shellcheck source=tests/lib/freeswitch.sh
source "$PAIRSCALE_ROOT/tests/lib/freeswitch.sh"
[ -r "$ps_fs_src/SHA256SUMS" ] || die "FreeSWITCH sources not found at $ps_fs_src (set PAIRSCALE_FREESWITCH_SRC)"
(cd "$ps_fs_src" && sha256sum --quiet -c SHA256SUMS) || die "FreeSWITCH archives in $ps_fs_src do not match SHA256SUMS"

PAIRSCALE_FREESWITCH_PREFIX=$(ps_fs_prefix)
export PAIRSCALE_FREESWITCH_PREFIX
export PAIRSCALE_FREESWITCH_BIN="$PAIRSCALE_FREESWITCH_PREFIX/bin/freeswitch"

# A new machine builds it in the background, beside the lint and the Rust build (which leave a
# core idle for much of it: configure scripts, linking); the checks that run FreeSWITCH call
# ps_fs_wait first. A machine that has it goes on at once.
if ps_fs_built "$PAIRSCALE_FREESWITCH_PREFIX"; then
  ps_fs_check "$PAIRSCALE_FREESWITCH_PREFIX"
else
  ps_fs_build_in_background "$PAIRSCALE_FREESWITCH_PREFIX"
fi
