# What the end-to-end scripts (.ci/e2e, .ci/e2e-shards) share: the Debian prometheus and
# python3-yaml packages (installed when missing), a scratch folder and the processes started,
# both removed on exit, and helpers for ports, readiness and PromQL. Sourced, not run; the
# caller has `set -euo pipefail` and is at the repository root.

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null ||
  ! python3 -c 'import yaml' 2>/dev/null; then
  echo "installing the Debian prometheus and python3-yaml packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends prometheus python3-yaml >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url, seconds
  for _ in $(seq 1 $(( $2 * 10 ))); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

# Against the Prometheus at $prom:
query() { # PromQL -> number of series in the result
  curl -fsS "$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))'
}
value() { # PromQL with a one-series result -> its value
  curl -fsS "$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
alert_states() { # alert name -> "instance=state ..." of its active alerts, sorted
  curl -fsS "$prom/api/v1/alerts" | python3 -c '
import json, sys
alerts = [a for a in json.load(sys.stdin)["data"]["alerts"] if a["labels"]["alertname"] == sys.argv[1]]
print(" ".join(sorted(a["labels"].get("instance", "-") + "=" + a["state"] for a in alerts)))' "$1"
}
