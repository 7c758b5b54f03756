#!/usr/bin/env bash
# Builds the Debian package from this tree into OUTDIR (default dist/) with dpkg-buildpackage,
# in a copy under build/deb (dpkg-buildpackage writes its results beside the source tree), then
# lints it: lintian errors and warnings fail (each accepted one has an override with a reason in
# debian/postfix-queue-monitor.lintian-overrides). Needs: debhelper dh-python lintian
# python3-packaging python3-requests (scripts/install-deps.sh) and PyPI for the private wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
ours=$(python3 -c 'import sys; sys.path.insert(0, "checks"); import postfix_queue_monitor as p; print(p.__version__)')
if [[ $upstream != "$ours" ]]; then
  echo "build-deb: debian/changelog says $upstream, postfix_queue_monitor.__version__ $ours" >&2
  exit 1
fi
work=build/deb
rm -rf "$work"
mkdir -p "$work/src" "$out"
# the tree as git sees it (tracked and new files, nothing ignored), else all but the usual junk
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$work/src"
else
  tar -c --exclude=./.venv --exclude=./build --exclude=./dist --exclude=.git . | tar -x -C "$work/src"
fi
(cd "$work/src" && dpkg-buildpackage -b -us -uc >../build.log 2>&1) || {
  tail -40 "$work/build.log" >&2; echo "build-deb: dpkg-buildpackage failed, log: $work/build.log" >&2; exit 1; }
deb="postfix-queue-monitor_${version}_all.deb"
cp "$work/$deb" "$out/"
lintian --fail-on error,warning --display-info "$out/$deb"
echo "$out/$deb"
