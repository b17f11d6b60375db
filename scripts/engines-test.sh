#!/usr/bin/env bash
# `scripts/engines.sh test`: the e2e tier on every engine at once (sourced by engines.sh, whose
# env_of, flags_of, CACHE and RUN it uses). On 2 cores the tier is mostly waiting (for dockerd,
# containers, timeouts), so the engines overlap well; MYNET_E2E_JOBS=N runs at most N at a time
# (1: one after another, as before).
#
# Each engine runs in namespaces of its own (scripts/engine-ns.sh: its own network, /run and
# /tmp), so two engines never see each other's dockerd, plugin socket, links, firewall or temp
# dirs. Their output goes to a log per engine, printed whole, in engine order, once all are done;
# a line says when each one finishes. A run fails when an engine fails or leaves a process in
# its namespace (those are killed, by pid: everything in that namespace is the run's).
#
# The plugin image is built once, before the engines start (scripts/plugin-prebuild.sh, on the
# first engine line, with this host's network), when plugin-managed.test.ts is in the run; each
# engine's make plugin then loads it (MNT_PLUGIN_IMAGE_TAR). Everything is under one directory
# $MYNET_E2E_WORK/mncs-e2e-* (default /var/tmp, outside the /tmp the engines get), removed at the
# end unless MNT_KEEP is set.

# The processes in the network namespace $1 (as readlink /proc/PID/ns/net prints it).
pids_in_netns() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}

engine_name() { env_of "$1" "$(flags_of "$1")" | sed -n 's/^MNT_ENGINE=//p'; }

# run_engine LINE DIR TARBALL: the tier on LINE in its namespaces; "<result> in <n> s" to DIR/result.
run_engine() {
  local l=$1 dir=$2 tar=$3 vars start r left
  mapfile -t vars < <(env_of "$l" "$(flags_of "$l")")
  [ -z "$tar" ] || vars+=("MNT_PLUGIN_IMAGE_TAR=$tar")
  start=$(date +%s)
  # The exec root and pid file are under $RUN, which is the namespace's own (empty) /run.
  # shellcheck disable=SC2016,SC2086 # $0 is for the inner shell; MNT_E2E_FILES is a list
  if env "${vars[@]}" scripts/engine-ns.sh "$dir" bash -c 'mkdir -p "$0" && exec "$@"' "$RUN/$l" \
    npx vitest run --project "e2e $(engine_name "$l")" ${MNT_E2E_FILES:-} >"$dir/log" 2>&1; then r=passed; else r=FAILED; fi
  left=$(pids_in_netns "$(cat "$dir/netns" 2>/dev/null || echo none)" | tr '\n' ' ')
  if [ -n "$left" ]; then
    echo "engines: processes left in the namespace of $l, killed: $left" >>"$dir/log"
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null || true
    r="FAILED (processes left: $left)"
  fi
  if [ -n "$(ls -A "$dir/tmp" 2>/dev/null)" ]; then
    echo "engines: left in its /tmp: $(ls -A "$dir/tmp" | tr '\n' ' ')" >>"$dir/log"
  fi
  echo "$r in $(($(date +%s) - start)) s" >"$dir/result"
  say "$l finished: $(cat "$dir/result")"
}

e2e_parallel() {
  local lines=("$@") jobs=${MYNET_E2E_JOBS:-$#} root tar="" l t0 res status=0 summary=() vars
  root=$(mktemp -d "${MYNET_E2E_WORK:-/var/tmp}/mncs-e2e-XXXXXX")
  if [ -z "${MNT_E2E_FILES:-}" ] || [[ $MNT_E2E_FILES == *plugin-managed* ]]; then
    tar=$root/plugin-image.tar
    echo "==== the plugin image, built once for every engine (on dockerd $(cat "$CACHE/${lines[0]}/version")) ===="
    mapfile -t vars < <(env_of "${lines[0]}" "")
    t0=$(date +%s)
    # shellcheck disable=SC2016
    if env "${vars[@]}" scripts/engine-ns.sh --host-net "$root/prebuild" \
      bash -c 'mkdir -p "$0" && exec "$@"' "$RUN/${lines[0]}" scripts/plugin-prebuild.sh "$tar"; then
      summary+=("plugin image: built in $(($(date +%s) - t0)) s")
    else
      summary+=("plugin image: FAILED in $(($(date +%s) - t0)) s (the engines did not run)")
      status=1
    fi
    [ -z "${MYNET_TEST_SUMMARY:-}" ] || echo "${summary[-1]}" >>"$MYNET_TEST_SUMMARY"
  fi
  if [ $status = 0 ]; then
    for l in "${lines[@]}"; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
      mkdir -p "$root/$l"
      say "e2e tier on $l started (its log: $root/$l/log, printed when all are done)"
      run_engine "$l" "$root/$l" "$tar" &
    done
    wait
    for l in "${lines[@]}"; do
      echo "==== e2e tier on $(engine_name "$l") (docker.io $(cat "$CACHE/$l/version"), compose v2 $(cat "$CACHE/compose-v2/version")) ===="
      cat "$root/$l/log"
      res=$(cat "$root/$l/result" 2>/dev/null || echo 'FAILED (no result)')
      [[ $res == passed* ]] || status=1
      summary+=("$(engine_name "$l"): $res")
      [ -z "${MYNET_TEST_SUMMARY:-}" ] || echo "${summary[-1]}" >>"$MYNET_TEST_SUMMARY"
    done
  fi
  echo "==== e2e tier per engine ===="
  printf '  %s\n' "${summary[@]}"
  [ -n "${MNT_KEEP:-}" ] || rm -rf "$root"
  return $status
}
