#!/usr/bin/env bash
# Installs the Debian packages listed in the given file(s) that are not installed yet.
# As root it runs apt-get; otherwise it prints the command to run and fails.
set -euo pipefail
missing=()
for f in "$@"; do
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < "$f"
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "setup: missing packages ${missing[*]} and no apt-get here: install them by hand" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "setup: installing Debian packages: ${missing[*]}"
# Debian starts nginx and haproxy as system services on install; the lab runs its own.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
