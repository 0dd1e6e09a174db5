"""site.yml stops on bad role input with a clear message, before any host changes (real-kernel lab).

The NAT example inventory (playbooks/inventories/nat) runs against lab hosts (lab/hosts.py)
through the lvs.ipvs.nsenter connection; each bad input is given with -e. Every host is
snapshotted before (addresses, routes, links, IPVS, iptables, sysctls, /etc) and must be
identical afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab import hosts as labhosts
from tests.support.ansible import ansible_env
from tests.support.collection import ROOT

pytestmark = pytest.mark.lab

LAB = "lvsbad"
PLATFORMS = [
    {"name": "director", "links": [{"segment": "front", "addresses": ["192.0.2.1/24"]},
                                   {"segment": "back", "addresses": ["10.0.1.1/24"]}]},
    {"name": "rs1", "gateway": "10.0.1.1", "links": [{"segment": "back", "addresses": ["10.0.1.11/24"]}]},
    {"name": "rs2", "gateway": "10.0.1.1", "links": [{"segment": "back", "addresses": ["10.0.1.12/24"]}]},
]
SERVICE = {"address": "192.0.2.10", "port": 80, "scheduler": "wrr"}
RS1 = {"address": "10.0.1.11", "port": 8080}


@pytest.fixture
def lab_nat(tmp_path):
    state = tmp_path / "lab"
    labhosts.create(state, LAB, {"hosts": PLATFORMS})
    inventory = tmp_path / "lab.yml"
    inventory.write_text(json.dumps({"all": {"vars": {
        "ansible_connection": "lvs.ipvs.nsenter",
        "ansible_nsenter_netns": LAB + "-{{ inventory_hostname }}",
        "ansible_nsenter_mount": "/run/lvs-lab/" + LAB + "/{{ inventory_hostname }}/mnt",
        "ansible_python_interpreter": sys.executable,
        "director_manage_packages": False}}}))
    try:
        yield state, inventory
    finally:
        labhosts.destroy(state)


def site(inventory: Path, extra: dict) -> subprocess.CompletedProcess[str]:
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(ROOT / "playbooks/inventories/nat"),
           "-i", str(inventory), str(ROOT / "playbooks/site.yml"), "-e", json.dumps(extra)]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(ansible_env(), ANSIBLE_PIPELINING="false"),
                          timeout=300, check=False)


CASES = [
    ("vip-not-an-address", {"lvs_virtual_services": [dict(SERVICE, address="192.0.2.300")]},
     "director_services[0].address: '192.0.2.300' is not an IPv4 or IPv6 address"),
    ("weight-out-of-range", {"lvs_real_server_weight": 70000},
     "director_services[0].real_servers[0].weight: 70000 is out of range 0..65535"),
    ("real-server-twice", {"lvs_virtual_services": [dict(SERVICE, real_servers=[RS1, RS1])]},
     "director_services[0].real_servers[1]: real server 10.0.1.11:8080 is listed twice"),
    ("bad-vip-list", {"lvs_vips": ["192.0.2.10/24"]},
     "director_vips[0]: 192.0.2.10/24: a VIP is a single address (/32), not /24"),
]


def test_bad_input_stops_the_play_before_any_host_changes(lab_nat):
    state, inventory = lab_nat
    before = labhosts.snapshot(state)
    for name, extra, message in CASES:
        run = site(inventory, extra)
        out = run.stdout + run.stderr
        assert run.returncode != 0, (name, out[-3000:])
        assert message in out, (name, out[-4000:])
        assert "PLAY [LVS directors]" not in out, name
        print("%s: %s" % (name, message))
    assert labhosts.compare(before, labhosts.snapshot(state)) == []


def test_nat_real_server_without_the_director_as_gateway_stops_the_play(lab_nat):
    state, inventory = lab_nat
    rs2 = labhosts._load(state)["hosts"]["rs2"]
    labhosts.host_run(rs2, ["ip", "route", "replace", "default", "via", "10.0.1.254"])
    before = labhosts.snapshot(state)
    run = site(inventory, {})
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "real server 10.0.1.12 has default gateway 10.0.1.254" in out, out[-4000:]
    assert "PLAY [LVS directors]" not in out
    assert labhosts.compare(before, labhosts.snapshot(state)) == []
