"""director_state: absent on the real kernel (a UML guest; the role against localhost).

A NAT director with two services (one FULLNAT), a masquerade source and its VIPs is set up by the
role; a service, a VIP and a NAT rule of another owner are added by hand. Then
``director_state: absent``: check mode predicts the removal and changes nothing; the real run
removes the role's services, VIPs, NAT chain (and the jump to it), drop-ins, rules files, unit and
record, and nothing of the other owner; a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.ansible import ansible_playbook

pytestmark = pytest.mark.lab

FOREIGN_VIP = "198.51.100.99"
ROLE_FILES = ("/etc/sysctl.d/90-lvs-director.conf", "/etc/modules-load.d/lvs-director.conf",
              "/etc/systemd/system/lvs-director.service", "/etc/lvs.ipvs/lvs-director.ipvs.rules",
              "/etc/lvs.ipvs/lvs-director.nat4.rules", "/var/lib/lvs.ipvs/lvs-director.json")
SERVICES = [
    {"address": "198.51.100.10", "port": 80, "scheduler": "wrr",
     "real_servers": [{"address": "172.16.0.11", "port": 8080, "weight": 3}, {"address": "172.16.0.12", "port": 8080}]},
    {"address": "198.51.100.20", "port": 443, "fullnat": True,
     "real_servers": [{"address": "172.16.0.11", "port": 443}]},
]


def sh(*argv: str, check: bool = True) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert not check or res.returncode == 0, (argv, res.stderr)
    return res.stdout


def play(tmp_path: Path, state: str, check: bool = False) -> tuple[int, str]:
    variables = {"director_state": state, "director_forwarding": "nat", "director_manage_packages": False,
                 "director_interface": "eth0", "director_private_interface": "eth1", "director_drain_timeout": 0,
                 "director_masquerade_sources": ["172.16.0.0/24"], "director_services": SERVICES}
    site = tmp_path / "site.yml"
    site.write_text("---\n- name: Director\n  hosts: localhost\n  connection: local\n  gather_facts: false\n"
                    "  roles:\n    - role: lvs.ipvs.director\n")
    run = ansible_playbook(site, variables, *(["--check", "--diff"] if check else []))
    return run.rc, run.output


def changed(output: str) -> int:
    return int(re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", output).group(1))


def host_state() -> dict:
    addrs = json.loads(sh("ip", "-j", "address", "show", "dev", "eth0"))[0]["addr_info"]
    return {
        "ipvs": sh("ipvsadm", "-Sn"),
        "vips": sorted(a["local"] for a in addrs if a["family"] == "inet"),
        "nat": sh("iptables", "-t", "nat", "-S"),
        "files": sorted(p for p in ROLE_FILES if os.path.exists(p)),
    }


@pytest.fixture
def director():
    # This UML kernel has no nftables for ip tables: the guest uses iptables-legacy, as the lab
    # machines do (molecule/nat); the links are the guest's own (its overlay root).
    for tool in ("iptables", "iptables-save", "iptables-restore"):
        sh("ln", "-sfn", "/usr/sbin/%s" % tool.replace("iptables", "iptables-legacy", 1), "/etc/alternatives/%s" % tool)
    for dev, addr in (("eth0", "198.51.100.1/24"), ("eth1", "172.16.0.1/24")):
        sh("ip", "link", "add", dev, "type", "dummy")
        sh("ip", "address", "add", addr, "dev", dev)
        sh("ip", "link", "set", dev, "up")
    yield
    sh("ipvsadm", "-C", check=False)
    for dev in ("eth0", "eth1"):
        sh("ip", "link", "del", dev, check=False)


def test_absent_removes_what_the_role_put_there_and_nothing_else(director, tmp_path):
    rc, out = play(tmp_path, "present")
    assert rc == 0, out
    # Another owner's service, VIP and NAT rule (keepalived's, an operator's).
    sh("ipvsadm", "-A", "-t", FOREIGN_VIP + ":80", "-s", "rr")
    sh("ip", "address", "add", FOREIGN_VIP + "/32", "dev", "eth0")
    sh("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/24", "-j", "MASQUERADE")
    before = host_state()
    assert "-A -t 198.51.100.10:80 -s wrr" in before["ipvs"] and "198.51.100.20" in before["vips"], before
    assert "-A LVS-DIRECTOR" in before["nat"] and before["files"] == sorted(ROLE_FILES), before

    rc, predicted = play(tmp_path, "absent", check=True)
    assert rc == 0, predicted
    assert host_state() == before, "check mode changed the host"

    rc, out = play(tmp_path, "absent")
    assert rc == 0, out
    # Check mode told the truth: the same number of changed tasks.
    assert changed(out) == changed(predicted) > 0, (predicted, out)
    after = host_state()
    assert after["ipvs"].strip() == "-A -t %s:80 -s rr" % FOREIGN_VIP, after["ipvs"]
    assert after["vips"] == ["198.51.100.1", FOREIGN_VIP], after["vips"]
    assert "LVS-DIRECTOR" not in after["nat"], after["nat"]
    assert "-A POSTROUTING -s 10.99.0.0/24 -j MASQUERADE" in after["nat"], after["nat"]
    assert after["files"] == [], after["files"]

    rc, again = play(tmp_path, "absent")
    assert rc == 0 and changed(again) == 0, again
    assert host_state() == after
