#!/usr/bin/env bash
# Install the real parts the tests need (Debian packages). Root installs what is missing;
# anyone else is told exactly what is missing. `--optional NAME...` only tries, never fails.
set -u
optional=0
if [ "${1:-}" = "--optional" ]; then optional=1; shift; fi
want=("$@")
[ ${#want[@]} -eq 0 ] && want=(mosquitto mbpoll victoria-metrics collectd-core chromium rabbitmq-server fonts-wqy-microhei)
declare -A bin=([mosquitto]=mosquitto [mbpoll]=mbpoll [victoria-metrics]=victoria-metrics [collectd-core]=collectd [chromium]=chromium [rabbitmq-server]=rabbitmq-server)
# packages without a program: the file that says they are there (the report's CJK font)
declare -A file=([fonts-wqy-microhei]=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc)
missing=()
for pkg in "${want[@]}"; do
  if [ -n "${file[$pkg]:-}" ]; then
    [ -f "${file[$pkg]}" ] || missing+=("$pkg")
    continue
  fi
  b=${bin[$pkg]:-$pkg}
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || [ -x "/usr/bin/$b" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get ..."
  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/minewatch-apt.log 2>&1; then
    # the Debian package starts a system broker on 1883; the tests start their own
    if [[ " ${missing[*]} " == *" mosquitto "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl stop mosquitto >/dev/null 2>&1 || true
    fi
    # likewise RabbitMQ (the tests start private nodes with their own ports and epmd)
    if [[ " ${missing[*]} " == *" rabbitmq-server "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl stop rabbitmq-server >/dev/null 2>&1 || true
    fi
    exit 0
  fi
  echo "apt-get install ${missing[*]} failed; see /tmp/minewatch-apt.log" >&2
  [ $optional = 1 ] && exit 0
  exit 1
fi
echo "MISSING real parts: ${missing[*]} (install: apt-get install ${missing[*]})." >&2
if [ $optional = 1 ]; then exit 0; fi
if [ "${CI:-}" = "true" ]; then exit 1; fi
echo "Tests that need them will be skipped (under CI=true they fail)." >&2
exit 0
