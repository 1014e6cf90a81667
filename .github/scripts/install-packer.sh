#!/usr/bin/env bash
# install-packer.sh VERSION: Packer from releases.hashicorp.com into /usr/local/bin, the archive
# checked against its pinned SHA-256 (linux amd64, the CI runner's). Debian does not package
# Packer and there is no PyPI or npm release of it, so this is how it is installed everywhere
# the template is validated or built (docs/operations.md, "A baked FreeSWITCH image").
#
# A version without a pinned checksum is refused. To pin one: take the archive's line from
# https://releases.hashicorp.com/packer/VERSION/packer_VERSION_SHA256SUMS after verifying that
# file's signature (packer_VERSION_SHA256SUMS.sig) with HashiCorp's release key
# (https://www.hashicorp.com/security), and add it below. The refusal prints what the archive and
# that file say, so the two can be compared; it never installs an unpinned archive.
set -euo pipefail
version=${1:?usage: install-packer.sh VERSION}
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
zip="packer_${version}_linux_${arch}.zip"
case "$version/$arch" in
  # 1.11.2/amd64) sum=<64 hex digits from the verified SHA256SUMS> ;;
  *) sum="" ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSLo "$tmp/$zip" "https://releases.hashicorp.com/packer/${version}/${zip}"
if [ -z "$sum" ]; then
  curl -fsSLo "$tmp/SHA256SUMS" "https://releases.hashicorp.com/packer/${version}/packer_${version}_SHA256SUMS" || true
  echo "no pinned checksum for $zip in $0: refusing to install it." >&2
  echo "the downloaded archive: $(sha256sum "$tmp/$zip" | cut -d' ' -f1)" >&2
  echo "HashiCorp's SHA256SUMS (verify its signature before pinning): $(grep " $zip\$" "$tmp/SHA256SUMS" 2>/dev/null || echo unavailable)" >&2
  exit 1
fi
echo "$sum  $tmp/$zip" | sha256sum -c -
sudo unzip -o -q "$tmp/$zip" packer -d /usr/local/bin
packer version | head -n 1 | grep -qx "Packer v${version}"
