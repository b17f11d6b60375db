#!/bin/sh
# The view of the system systemd/mynet.service gives the plugin, as far as it can be made
# without systemd (this machine's PID 1 is not systemd): run inside `unshare -m` (a private
# mount namespace, as systemd gives a unit with ProtectSystem=), then
#   unit-sandbox.sh CAPS WRITABLE... -- COMMAND...
# - ProtectSystem=strict: every mount read-only except /proc, /sys and /dev (systemd leaves those
#   API file systems as they are), and except the WRITABLE paths (bind-mounted onto themselves
#   first, so they stay writable);
# - ProtectHome=yes: /home, /root and /run/user empty and read-only;
# - CapabilityBoundingSet=CAPS (comma list, e.g. +net_admin,+net_raw), no inheritable or ambient
#   capabilities, NoNewPrivileges=yes: then COMMAND is exec'd (as root, so its capabilities are
#   exactly the bounding set, as systemd runs a root unit).
set -eu
caps=$1
shift
mount --make-rprivate /
writable=""
while [ "$1" != -- ]; do
  mkdir -p "$1"
  mount --bind "$1" "$1"
  writable="$writable $1"
  shift
done
shift
for d in /home /root /run/user; do
  [ -d "$d" ] && mount -t tmpfs -o ro,mode=0755 mnt-home "$d"
done
# Mount points in /proc/self/mountinfo order (parents before children); octal escapes as is.
awk '{ print $5 }' /proc/self/mountinfo | while read -r mp; do
  case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
  keep=no
  for w in $writable; do [ "$mp" = "$w" ] && keep=yes; done
  [ "$keep" = yes ] && continue
  mount -o remount,bind,ro "$mp" 2>/dev/null || mount -o remount,ro "$mp"
done
exec setpriv --bounding-set "-all${caps:+,$caps}" --inh-caps -all --ambient-caps -all --no-new-privs -- "$@"
