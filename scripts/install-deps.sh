#!/usr/bin/env bash
# Installs the real programs the integration tests use, with Debian's packages, idempotently.
# Run as root on Debian 12; elsewhere it says why it does nothing and exits 0 (the tests then
# skip with that reason, and fail under CI=true).
set -euo pipefail

PACKAGES=(
  postfix                        # the real queue (installed first: bsd-mailx would pull exim4)
  monitoring-plugins-standard    # check_mailq, the benchmark anchor
  pflogsumm                      # log anchor
  nagios4-core                   # nagios4 -v and a real daemon (not nagios4: Apache + PHP)
  icinga2-bin icinga2-common     # icinga2 daemon -C and a real daemon
  nagios-nrpe-server nagios-nrpe-plugin   # nrpe + check_nrpe round trips
  postgresql zabbix-server-pgsql zabbix-frontend-php php-pgsql php-cli   # a real Zabbix 6.0
  zabbix-agent                   # zabbix_agentd (the UserParameter path); zabbix_get ships in zabbix-server-pgsql
  libevent-extra-2.1-7 libevent-pthreads-2.1-7   # the private Zabbix 7.0 server (fetch-zabbix7.sh)
  gcc libc6-dev python3-dev libssl-dev   # build sslpsk3 (PSK for the sender on Python < 3.13)
  systemd                        # journalctl (journal files made in tests)
  systemd-journal-remote         # makes real journal files from export format (bounce tests)
  hyperfine                      # benchmarks
  time                           # GNU time: the benchmarks' peak RSS per run
  prometheus                     # a real Prometheus server and promtool (check rules/metrics, test rules)
  prometheus-node-exporter       # node_exporter's textfile collector
  debhelper dh-python lintian help2man   # make dist: the Debian package (dpkg-buildpackage, dh_python3, man pages) and its lint
  icingaweb2-module-director icingacli   # the Icinga Director a basket test imports into (schema on the PostgreSQL above)
  python3-pip python3-packaging python3-requests   # the package's Build-Depends (and Depends) beside python3-pip
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: not root: the real programs are not installed (integration tests will skip)"
  exit 0
fi
if [[ ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null; then
  echo "install-deps: not Debian: the real programs are not installed (integration tests will skip)"
  exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
here=$(dirname "$0")
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  "$here/fetch-zabbix7.sh" || echo "install-deps: Zabbix 7.0 not fetched: its tests will skip"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"

# No daemon may be started by the packages' maintainer scripts: tests start their own, by PID.
created_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT

echo "postfix postfix/main_mailer_type select Internet Site" | debconf-set-selections
echo "postfix postfix/mailname string localhost" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
# apt-cache needs a fresh list on a new machine
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends postfix >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
"$here/fetch-zabbix7.sh" || echo "install-deps: Zabbix 7.0 not fetched: its tests will skip"
