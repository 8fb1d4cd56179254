#!/usr/bin/env bash
# Measures the built binary: size, time from exec to /readyz = 200 on the
# embedded SQLite database (first start with a new data directory, and a
# start that reuses it), and resident memory once idle. Baseline in the
# same run: exec to exit of `imap-mcp version`.
# Usage: bench/startup.sh [runs]   (default 21; prints medians)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-21}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/imap-mcp" .
bin="$work/imap-mcp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

now_ms() { date +%s%N | awk '{printf "%.2f", $1/1e6}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# start_once DATA_DIR: sets $ms to the milliseconds from exec to /readyz = 200 and $pid.
start_once() {
  local t0 t1
  t0=$(now_ms)
  PORT=$port DATA_DIR="$1" LOG_LEVEL=error "$bin" serve >/dev/null 2>&1 &
  pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do sleep 0.002; done
  t1=$(now_ms)
  ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", b-a}')
}

stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

cold=(); warm=(); base=(); rss=()
for i in $(seq "$runs"); do
  t0=$(now_ms); "$bin" version >/dev/null; t1=$(now_ms)
  base+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", b-a}')")

  dir="$work/data-$i"
  start_once "$dir"; cold+=("$ms"); stop
  start_once "$dir"; warm+=("$ms")
  for _ in 1 2 3 4 5; do curl -fsS -o /dev/null "http://127.0.0.1:$port/"; done
  sleep 1
  rss+=("$(awk '/VmRSS/ {printf "%.1f\n", $2/1024}' /proc/$pid/status)")
  stop
done

size=$(stat -c %s "$bin")
printf 'binary size:                        %.1f MB (%d bytes)\n' "$(echo "$size/1048576" | bc -l)" "$size"
printf 'baseline, exec "version" to exit:   %s ms (median of %d)\n' "$(printf '%s\n' "${base[@]}" | median)" "$runs"
printf 'exec to /readyz, new data dir:      %s ms\n' "$(printf '%s\n' "${cold[@]}" | median)"
printf 'exec to /readyz, existing data dir: %s ms\n' "$(printf '%s\n' "${warm[@]}" | median)"
printf 'idle RSS after 5 page views:        %s MB\n' "$(printf '%s\n' "${rss[@]}" | median)"
