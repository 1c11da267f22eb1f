#!/usr/bin/env bash
# The OS tools scopenet's datapath needs (L3 agent, test instances, netns tests):
#   nft + libnftables.so.1 (rulesets, applied in process), ip (namespaces), ping, conntrack,
#   bird2 (the BGP speaker, and the external router of the BGP tests),
#   chromium (the browser the web UI's tests drive with Playwright; never a downloaded one).
# Installs only what is missing, with apt-get, and only as root; says in one line what it does.
# Usage: scripts/os-deps.sh [--check]   (--check: report what is missing, install nothing)
set -euo pipefail

# package -> a file that proves it is installed
declare -A PROBE=(
  [nftables]="nft"
  [libnftables1]="lib:libnftables.so.1"
  [iproute2]="ip"
  [iputils-ping]="ping"
  [conntrack]="conntrack"
  [bird2]="bird"
  [chromium]="chromium"
)

have() {
  local probe=$1
  if [[ $probe == lib:* ]]; then
    ldconfig -p 2>/dev/null | grep -q "${probe#lib:}" && return 0
    compgen -G "/usr/lib/*/${probe#lib:}" >/dev/null || compgen -G "/lib/*/${probe#lib:}" >/dev/null
  else
    command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe || -x /sbin/$probe ]]
  fi
}

missing=()
for pkg in nftables libnftables1 iproute2 iputils-ping conntrack bird2 chromium; do
  have "${PROBE[$pkg]}" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ ${1:-} == --check ]]; then
  echo "scopenet: missing OS packages: ${missing[*]} (run scripts/os-deps.sh as root to install)" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "scopenet: missing OS packages: ${missing[*]}; run as root: sudo $0" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scopenet: missing OS packages: ${missing[*]}; no apt-get here, install them with your package manager" >&2
  exit 1
fi
echo "scopenet: installing OS packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
