#!/usr/bin/env bash
# Profiles the server built from the working tree under the saturation
# phase of bench/load (50 closed-loop clients, list 50 and get
# alternating, against the rig's Dovecot): builds it with the
# benchprofile tag (profile_bench.go), runs one 20 s round, and prints
# where the CPU and the allocations go. Needs what bench/load.sh needs.
# Usage: bench/profile.sh [OUT_DIR]   (default: a new temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
CGO_ENABLED=0 go build -tags benchprofile -trimpath -o "$out/server" .
IMAP_MCP_CPUPROFILE="$out/cpu.pprof" go run ./bench/load -bin "head=$out/server" -rounds 1 -seconds 20 -paced 1 -burst 1
go tool pprof -top -cum -nodecount=60 "$out/server" "$out/cpu.pprof"
go tool pprof -sample_index=alloc_space -top -nodecount=30 "$out/server" "$out/cpu.pprof.allocs"
echo "profiles in $out"
