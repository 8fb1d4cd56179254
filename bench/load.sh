#!/usr/bin/env bash
# Builds the server at HEAD and at a baseline revision side by side and
# measures both under the same load against the test rig's Dovecot
# (bench/load/main.go says what is measured). Needs root and the rig's
# packages (./scripts/test installs them).
# Usage: bench/load.sh [BASE_REV] [load flags…]   (default base: 7745f4c^,
# the last commit before the read path stopped writing to the database)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-7745f4c^}
shift || true
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$base" >/dev/null
(cd "$work/base" && CGO_ENABLED=0 go build -trimpath -o "$work/old" .)
CGO_ENABLED=0 go build -trimpath -o "$work/new" .
go run ./bench/load -bin "base=$work/old,head=$work/new" "$@"
