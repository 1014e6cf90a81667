#!/usr/bin/env bash
# install-terraform.sh VERSION: Terraform from releases.hashicorp.com into /usr/local/bin, the
# archive checked against its pinned SHA-256 (linux amd64 for ci.yml, arm64 for deploy.yml). The
# same version as the buildspec and build-image/Dockerfile (tests/terraform/supply_chain.py).
set -euo pipefail
version=${1:?usage: install-terraform.sh VERSION}
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
case "$version/$arch" in
  1.11.4/amd64) sum=1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc ;;
  1.11.4/arm64) sum=a43d1d0da9b9bab214a8305a39db0e40869572594ccf50c416a7756499143633 ;;
  *) echo "no pinned checksum for terraform $version linux_$arch" >&2; exit 1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSLo "$tmp/terraform.zip" "https://releases.hashicorp.com/terraform/${version}/terraform_${version}_linux_${arch}.zip"
echo "$sum  $tmp/terraform.zip" | sha256sum -c -
sudo unzip -o -q "$tmp/terraform.zip" terraform -d /usr/local/bin
terraform version | head -n 1 | grep -qx "Terraform v${version}"
