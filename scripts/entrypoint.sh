#!/bin/sh
# The image's ENTRYPOINT: sizes the V8 heap from the container's memory limit, then runs the CLI.
#
# Node sizes its old generation from the host's memory, and under a cgroup limit Node 24 still keeps
# at least 256 MiB: a sidecar with a 128 or 256 MiB hard limit could be killed by the kernel before
# V8 collects harder. So half of the container's limit goes to the old generation; the other half
# is node itself (its code and buffers, about 60 MiB resident), the young generation
# (--max-semi-space-size in the image's NODE_OPTIONS) and headroom (docs/performance.md).
# A --max-old-space-size already in NODE_OPTIONS wins; no limit (or none readable) sets nothing.
# ECS_SECRETS_MEMORY_LIMIT_FILE names the file holding the limit in bytes (tests use a fake one).
set -eu

HEAP_SHARE_PERCENT=50
MIN_HEAP_MIB=32

limit_file=${ECS_SECRETS_MEMORY_LIMIT_FILE:-}
if [ -z "$limit_file" ]; then
  if [ -r /sys/fs/cgroup/memory.max ]; then
    limit_file=/sys/fs/cgroup/memory.max # cgroup v2
  else
    limit_file=/sys/fs/cgroup/memory/memory.limit_in_bytes # cgroup v1
  fi
fi

case " ${NODE_OPTIONS:-} " in
*" --max-old-space-size="* | *" --max_old_space_size="*) ;;
*)
  limit=$(cat "$limit_file" 2>/dev/null || true)
  case $limit in
  '' | *[!0-9]*) ;; # "max" (no limit), unreadable, or not a number
  *)
    # cgroup v1 writes "no limit" as a number near 2^63: 13 digits and more (1 TiB up) is no limit.
    if [ ${#limit} -le 12 ]; then
      heap_mib=$((limit / 1048576 * HEAP_SHARE_PERCENT / 100))
      if [ "$heap_mib" -lt "$MIN_HEAP_MIB" ]; then heap_mib=$MIN_HEAP_MIB; fi
      NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--max-old-space-size=$heap_mib"
      export NODE_OPTIONS
    fi
    ;;
  esac
  ;;
esac

exec node /app/dist/src/cli.js "$@"
