#!/usr/bin/env bash
# freeswitch-src.sh DIR: the FreeSWITCH 1.10.12 release archives tests/setup/40-freeswitch.sh
# builds from (../shared/freeswitch-src on a developer's machine), made on a CI runner from the
# upstream repositories. Each archive is `git archive` of a pinned commit, fetched by its full
# SHA-1 and checked against the SHA-256 of that tar (equal to the uncompressed content of the
# archives in ../shared/freeswitch-src), then compressed; SHA256SUMS is written beside them,
# as 40-freeswitch.sh expects.
set -euo pipefail
out=${1:?usage: freeswitch-src.sh DIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name | repository | commit | sha256 of the uncompressed tar | paths left out
archives=(
  "spandsp-0c7bcebef4f0|freeswitch/spandsp|0c7bcebef4f057b99832a338aafab7e379ef1395|41726ae0ae7892877a5e729b6fb8f62764aaf876cecb5dcab91fd0df2e5c910f|"
  "sofia-sip-1.13.17|freeswitch/sofia-sip|6198851a610b7889c17e2d98fb84617bc1dd7aec|8a564f3a6e38395e060b5a9af04a1c17679ff85255265eda913093ca1b72d2c8|"
  # A 4K test image of a video module nothing here builds is left out (as in ../shared).
  "freeswitch-1.10.12|signalwire/freeswitch|a88d069d6ffb74df797bcaf001f7e63181c07a09|9eedf54cf08ebb7c15368510a05243c4c22003a722cefed5bdd666d6e6e21741|src/mod/applications/mod_fsv/freeswitch-4k.yuv"
)

for entry in "${archives[@]}"; do
  IFS='|' read -r name repo commit sum exclude <<< "$entry"
  git init -q "$work/$name"
  git -C "$work/$name" fetch -q --depth 1 "https://github.com/$repo.git" "$commit"
  pathspec=()
  [ -z "$exclude" ] || pathspec=(-- . ":(exclude)$exclude")
  # tar.umask is git's default (0002), as in the archives this reproduces.
  git -C "$work/$name" -c tar.umask=0002 archive --format=tar --prefix="$name/" "$commit" "${pathspec[@]}" > "$work/$name.tar"
  got=$(sha256sum "$work/$name.tar" | cut -c1-64)
  if [ "$got" != "$sum" ]; then
    echo "$name: git archive of $repo@$commit has sha256 $got, expected $sum" >&2
    exit 1
  fi
  xz -T0 -c "$work/$name.tar" > "$out/$name.tar.xz"
  rm -rf "$work/$name" "$work/$name.tar"
done
(cd "$out" && sha256sum ./*.tar.xz | sed 's# \./# #' > SHA256SUMS)
cat "$out/SHA256SUMS"
