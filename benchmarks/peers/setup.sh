#!/usr/bin/env bash
# Installs the peer gateways that benchmarks/peers.py measures MineWatch against, each in its own
# prefix under .cache/peers/ so none can disturb the project's venv. Idempotent: a peer already
# installed at the pinned version is left alone. Prints one line per peer: "ok NAME VERSION" or
# "error NAME: <exact message>" (the benchmark puts that message in the peer's row).
#   bash benchmarks/peers/setup.sh [collectd] [thingsboard] [nodered]
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="$ROOT/.cache/peers"
mkdir -p "$CACHE"
# Pins: thingsboard-gateway brings its own paho and pymodbus pins; Node-RED 4.0.x and
# node-red-contrib-modbus 5.23.3 run on Node 20 (newer contrib-modbus wants Node 22 or pulls a
# dependency from outside the npm registry).
TB_VERSION="${TB_VERSION:-3.8.3}"
# the gateway pip-installs its Modbus library on first start when missing: install it here so a
# run never reaches for the network
TB_PYMODBUS_VERSION="${TB_PYMODBUS_VERSION:-3.9.2}"
NODERED_VERSION="${NODERED_VERSION:-4.0.9}"
CONTRIB_MODBUS_VERSION="${CONTRIB_MODBUS_VERSION:-5.23.3}"
WANT=("$@")
[ ${#WANT[@]} -eq 0 ] && WANT=(collectd thingsboard nodered)

err() { echo "error $1: $(tail -n 3 "$2" | tr '\n' ' ')"; }

setup_collectd() {
  local log="$CACHE/collectd-install.log"
  if [ ! -f /usr/lib/collectd/modbus.so ]; then
    if ! command -v apt-get >/dev/null; then echo "error collectd: apt-get not found"; return 1; fi
    { [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -q; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        collectd-core libmodbus5; } >"$log" 2>&1 \
      || { DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$log" 2>&1 && \
           DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
             collectd-core libmodbus5 >>"$log" 2>&1; } \
      || { err collectd "$log"; return 1; }
  fi
  [ -f /usr/lib/collectd/modbus.so ] || { echo "error collectd: /usr/lib/collectd/modbus.so missing after install"; return 1; }
  echo "ok collectd $(dpkg-query -W -f='${Version}' collectd-core 2>/dev/null)"
}

setup_thingsboard() {
  local venv="$CACHE/tb-venv" log="$CACHE/tb-install.log"
  if ! "$venv/bin/python" -m pip show thingsboard-gateway 2>/dev/null | grep -q "^Version: $TB_VERSION$" \
     || ! "$venv/bin/python" -m pip show pymodbus 2>/dev/null | grep -q "^Version: $TB_PYMODBUS_VERSION$"; then
    { python3 -m venv "$venv" && "$venv/bin/python" -m pip install -q --upgrade pip && \
      "$venv/bin/python" -m pip install -q "thingsboard-gateway==$TB_VERSION" \
        "pymodbus==$TB_PYMODBUS_VERSION" pyserial pyserial-asyncio; } >"$log" 2>&1 \
      || { err thingsboard "$log"; return 1; }
  fi
  echo "ok thingsboard $TB_VERSION"
}

setup_nodered() {
  local prefix="$CACHE/nodered" log="$CACHE/nodered-install.log"
  command -v npm >/dev/null || { echo "error nodered: npm not found (node $(node --version 2>&1))"; return 1; }
  if [ "$(cat "$prefix/.pinned" 2>/dev/null)" != "$NODERED_VERSION $CONTRIB_MODBUS_VERSION" ]; then
    mkdir -p "$prefix"
    [ -f "$prefix/package.json" ] || echo '{"name":"minewatch-peer-nodered","private":true}' >"$prefix/package.json"
    (cd "$prefix" && npm install --no-audit --no-fund --omit=dev \
       "node-red@$NODERED_VERSION" "node-red-contrib-modbus@$CONTRIB_MODBUS_VERSION") >"$log" 2>&1 \
      || { err nodered "$log"; return 1; }
    echo "$NODERED_VERSION $CONTRIB_MODBUS_VERSION" >"$prefix/.pinned"
  fi
  echo "ok nodered node-red@$NODERED_VERSION node-red-contrib-modbus@$CONTRIB_MODBUS_VERSION node $(node --version)"
}

rc=0
for peer in "${WANT[@]}"; do
  "setup_$peer" || rc=1
done
exit $rc
