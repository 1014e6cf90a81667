#!/usr/bin/env bash
# build-image-tag.sh: the tag of the build image, the first 16 hex digits of the SHA-256 of the
# SHA-256s of build-image/{Dockerfile,aws-provider.sha256,requirements.txt}, one a line: the
# same tag terraform/modules/orchestrator/ecr.tf computes (tests/terraform/supply_chain.py checks
# the two agree).
set -euo pipefail
dir=${1:-build-image}
sums=$(for f in Dockerfile aws-provider.sha256 requirements.txt; do sha256sum < "$dir/$f" | cut -c1-64; done)
printf '%s' "$sums" | sha256sum | cut -c1-16
