#!/usr/bin/env bash
# A private Zabbix 7.0 (server + frontend + schema) beside the installed 6.0, for the tests that
# prove the templates import and work on 7.0 too. Debian 12 ships only 6.0; bookworm-backports has
# 7.0 under the same package names, so it cannot be installed next to 6.0: the two .debs are
# downloaded with apt (its own lists, signature checks as usual; the system's sources are not
# touched) and unpacked under ZABBIX7_ROOT. Idempotent: nothing is fetched when the tree is there.
# Needs root on Debian 12 (install-deps.sh calls it); elsewhere it says why and exits 0.
set -euo pipefail

root=${ZABBIX7_ROOT:-/var/cache/postfix-queue-monitor/zabbix-7.0}
stamp=$root/VERSION

if [[ $(id -u) -eq 0 ]]; then    # one fetch at a time (two CI runs on one machine)
  mkdir -p "$(dirname "$root")"
  exec 9>"$root.lock"
  flock 9
fi

if [[ -s $stamp && -x $root/usr/sbin/zabbix_server && -f $root/usr/share/zabbix/api_jsonrpc.php ]]; then
  echo "fetch-zabbix7: $(cat "$stamp") present in $root"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! grep -qs '^12' /etc/debian_version; then
  echo "fetch-zabbix7: needs root on Debian 12 (the Zabbix 7.0 tests will skip)"
  exit 0
fi

apt_dir=$root/apt
rm -rf "$root"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$root/etc"
echo "deb http://deb.debian.org/debian bookworm-backports main" > "$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir"
      -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -q >/dev/null
version=$(apt-cache "${opts[@]}" policy zabbix-server-pgsql | awk '/bookworm-backports/ {print prev} {prev=$1}' | head -1)
if [[ $version != 1:7.0.* ]]; then
  echo "fetch-zabbix7: bookworm-backports offers zabbix-server-pgsql '${version:-nothing}', not 7.0" >&2
  exit 1
fi
(cd "$apt_dir" && apt-get "${opts[@]}" download -q \
   "zabbix-server-pgsql=$version" "zabbix-frontend-php=$version" >/dev/null)
for deb in "$apt_dir"/*.deb; do
  dpkg-deb -x "$deb" "$root"
done
rm -rf "$apt_dir"

# The tree is not at /: the frontend's relative font links need /usr/share/fonts, and its config
# path (a Debian patch: /etc/zabbix/zabbix.conf.php, which belongs to the installed 6.0) is moved
# into the tree so that a 7.0 lab never touches the system's file.
ln -s /usr/share/fonts "$root/usr/share/fonts"
sed -i "s|const CONFIG_FILE_PATH = '/etc/zabbix/zabbix.conf.php';|const CONFIG_FILE_PATH = '$root/etc/zabbix.conf.php';|" \
  "$root/usr/share/zabbix/include/classes/core/CConfigFile.php"
grep -q "$root/etc/zabbix.conf.php" "$root/usr/share/zabbix/include/classes/core/CConfigFile.php"
echo "$version" > "$stamp"
echo "fetch-zabbix7: $version unpacked in $root"
