#!/usr/bin/env bash
# Installs everything the tests and the lab need on a fresh Debian machine:
# the UML kernel and the LVS tools (system packages) and a Python >= 3.12 venv in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(user-mode-linux uml-utilities openssh-server openssh-client e2fsprogs ipvsadm iproute2 iptables curl keepalived
          procps kmod shellcheck gcc make)
# uml-utilities: uml_switch (the lab machines' network); openssh-server: sshd inside the lab machines
# (they boot the host's root read-only); e2fsprogs: their disks.
# gcc: lab/xstate_shim.c, needed by UML on CPUs with a large XSAVE area (AVX-512, AMX).
missing=()
for p in "${apt_pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    # Installing must not start any service on this machine (sshd, uml_switch, keepalived): the lab
    # machines start their own. policy-rc.d refuses every start while the packages install.
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && made_policy=1
        trap '[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ansible-core 2.21 needs Python >= 3.12; the machine's default python3 may be older.
pick_python() {
    for c in "${PYTHON:-}" python3.13 python3.12 /root/.pyenv/versions/3.13*/bin/python3 /root/.pyenv/versions/3.12*/bin/python3 python3; do
        [ -n "$c" ] || continue
        command -v "$c" >/dev/null 2>&1 || continue
        if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! cmp -s requirements-dev.txt .venv/.requirements 2>/dev/null; then
    py=$(pick_python) || { echo "setup: no Python >= 3.12 found" >&2; exit 1; }
    echo "setup: creating .venv with $py"
    rm -rf .venv
    "$py" -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
    cp requirements-dev.txt .venv/.requirements
fi
echo "setup: ok ($(.venv/bin/python --version), $(.venv/bin/ansible --version | sed -n 1p))"
