#!/usr/bin/env bash
# What `npm test` (and so `make test` and .ci/run) runs: lint + types + build, the unit tier, then
# the host tier and the e2e tier (once per engine, the engines at once: scripts/engines.sh test)
# at the same time: the host tier in namespaces of its own (scripts/engine-ns.sh), its output
# kept in a log and printed after the e2e tier's. It stops at the first part that fails (host and
# e2e count as one step: both run to the end), and ends, whatever happened, with one line per part:
# its time in seconds and its result, one line per engine for the e2e tier.
#
# MYNET_TEST_SKIP="host e2e" (a space-separated list of: checks unit host e2e) leaves those parts
# out, for a quick local run only; each shows as "skipped" in the summary. CI never sets it.
# Everything else (MYNET_ENGINES, MNT_E2E_FILES, MYNET_TIER_LOCK) goes on to scripts/engines.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

summary=()
status=0
engines=$(mktemp /tmp/mnt-test-engines-XXXXXX)
trap 'rm -f "$engines"' EXIT

# The build, then make's stamp: the e2e tier's `make run` (three engines at once) must find nothing
# to do. A build started there would rewrite dist/ under a plugin already starting from it (seen
# in CI: a half-written module, "does not provide an export named TABLE").
checks() {
  npm run -s lint && npm run -s typecheck && npm run -s build && touch dist/main.js && make -q build \
    || { echo "checks: failed, or make still finds the build out of date (make -n build says why)" >&2; return 1; }
}
unit() { npx vitest run --project unit; }
host() { npx vitest run --project host; }
# The host tier, started in the background in namespaces of its own (its links, firewall, /run
# and /tmp are not the e2e engines'); host_wait prints its log and returns its result.
hostdir=''
host_start() {
  hostdir=$(mktemp -d /var/tmp/mncs-host-XXXXXX)
  (
    r=0
    scripts/engine-ns.sh "$hostdir" npx vitest run --project host >"$hostdir/log" 2>&1 || r=$?
    echo "$r" >"$hostdir/rc"
    echo "$EPOCHREALTIME" >"$hostdir/end"
  ) &
  echo "$!" >"$hostdir/pid"
}
host_wait() {
  wait "$(cat "$hostdir/pid")" || true
  cat "$hostdir/log"
  local rc
  rc=$(cat "$hostdir/rc" 2>/dev/null || echo 1)
  [ "$rc" = 0 ]
}
# engines.sh writes its per-engine lines to MYNET_TEST_SUMMARY as well as to the terminal.
e2e() { MYNET_TEST_SUMMARY=$engines scripts/engines.sh test; }

# part NAME LABEL: runs NAME unless skipped or an earlier part failed, and records its line.
part() {
  local name=$1 label=$2 start r
  if [ "$status" != 0 ]; then
    summary+=("$(printf '%-18s not run (an earlier part failed)' "$label")")
    return
  fi
  case " ${MYNET_TEST_SKIP:-} " in
    *" $name "*)
      summary+=("$(printf '%-18s skipped (MYNET_TEST_SKIP)' "$label")")
      return
      ;;
  esac
  echo "==== $label ===="
  start=$EPOCHREALTIME
  if "$name"; then r=passed; else r=FAILED; status=1; fi
  summary+=("$(printf '%-18s %s in %.1f s' "$label" "$r" "$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')")")
  if [ "$name" = e2e ]; then
    while IFS= read -r line; do summary+=("  $line"); done <"$engines"
  fi
}

part checks 'lint+types+build'
part unit 'unit'
# host || e2e: the host tier runs while the e2e tier does (part host then only waits for it).
hosting=no
if [ "$status" = 0 ] && [[ " ${MYNET_TEST_SKIP:-} " != *" host "* ]]; then
  host_start
  hosting=yes
  host_started=$EPOCHREALTIME
fi
part e2e 'e2e'
if [ "$hosting" = yes ]; then
  echo "==== host (run during the e2e tier) ===="
  if host_wait; then r=passed; else r=FAILED; status=1; fi
  took=$(awk -v a="$host_started" -v b="$(cat "$hostdir/end" 2>/dev/null || echo "$EPOCHREALTIME")" 'BEGIN { print b - a }')
  summary=("${summary[@]:0:2}" "$(printf '%-18s %s in %.1f s (during the e2e tier)' host "$r" "$took")" "${summary[@]:2}")
  [ -n "${MNT_KEEP:-}" ] || rm -rf "$hostdir"
else
  part host 'host'
fi

echo "==== make test: time per part ===="
printf '  %s\n' "${summary[@]}"
exit $status
