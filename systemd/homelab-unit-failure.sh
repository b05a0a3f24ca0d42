#!/usr/bin/env bash
# OnFailure= reporter (systemd/homelab-unit-failure@.service): one journal line naming the
# failed unit and, when PUSHGATEWAY_URL is set, homelab_unit_failed{unit,host} = 1 plus the
# failure time pushed to <url>/metrics/job/homelab_unit_failure/unit/<unit>/host/<host>.
#   homelab-unit-failure UNIT
# Exit 0 when the line was written (a push failure is reported on the same line); 2 on usage.
set -uo pipefail
unit=${1:-}
if [[ ! $unit =~ ^[A-Za-z0-9@._:-]{1,255}$ ]]; then
  echo "homelab-unit-failure: usage: homelab-unit-failure UNIT (a unit name)" >&2
  exit 2
fi
host=$(hostname 2>/dev/null || echo unknown)
host=${host//[^A-Za-z0-9._-]/_}
now=$(date +%s)
url=${PUSHGATEWAY_URL:-}
push=""
if [ -n "$url" ]; then
  body="# TYPE homelab_unit_failed gauge
homelab_unit_failed 1
# TYPE homelab_unit_failure_timestamp_seconds gauge
homelab_unit_failure_timestamp_seconds $now
"
  target="${url%/}/metrics/job/homelab_unit_failure/unit/$unit/host/$host"
  if command -v curl >/dev/null 2>&1; then
    if curl -fsS -m 10 -X PUT --data-binary "$body" "$target" >/dev/null 2>&1; then
      push="; failure metric pushed"
    else
      push="; failure metric NOT pushed (curl to the Pushgateway failed)"
    fi
  else
    push="; failure metric NOT pushed (curl missing: apt-get install -y curl)"
  fi
else
  push="; no PUSHGATEWAY_URL in /etc/homelab/unit-failure.env: metric not pushed"
fi
echo "UNIT FAILED: $unit on $host$push"
exit 0
