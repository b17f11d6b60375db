#!/usr/bin/env bash
# What `npm test` (and so `make test` and .ci/run) runs: lint + types + build, the unit tier, the
# host tier, then the e2e tier once per engine (scripts/engines.sh test). It stops at the first
# part that fails, as npm's && chain did, and ends, whatever happened, with one line per part:
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

checks() { npm run -s lint && npm run -s typecheck && npm run -s build; }
unit() { npx vitest run --project unit; }
host() { npx vitest run --project host; }
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
part host 'host'
part e2e 'e2e'

echo "==== make test: time per part ===="
printf '  %s\n' "${summary[@]}"
exit $status
