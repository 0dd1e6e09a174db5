"""The keepalived filters gather records from hostvars: the role's fact, else inventory variables."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.filter.keepalived import FilterModule, records

INST = {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddresses": ["192.0.2.10/24"]}


def fact(address):
    return {"_keepalived_record": {"group": "directors", "group_hosts": ["dir1", "dir2"], "address": address,
                                   "vrrp_instances": [INST]}}


def test_fact_wins_and_inventory_fills_in_for_hosts_outside_the_play():
    hostvars = {"dir1": fact("192.0.2.1/24"),
                "dir2": {"ansible_host": "192.0.2.2", "keepalived_vrrp_instances": [INST], "unrelated": 1}}
    out = records(hostvars, ["dir1", "dir2"])
    assert out["dir1"]["in_play"] is True and out["dir1"]["address"] == "192.0.2.1/24"
    assert out["dir2"] == {"in_play": False, "vrrp_instances": [INST], "address": "192.0.2.2",
                           "group": "directors", "group_hosts": ["dir1", "dir2"]}


def test_filters_check_and_resolve():
    filters = FilterModule().filters()
    hostvars = {"dir1": fact("192.0.2.1/24"), "dir2": fact("192.0.2.2/24")}
    assert filters["keepalived_preflight"](hostvars, ["dir1", "dir2"]) == []
    assert filters["keepalived_config"](hostvars, ["dir1", "dir2"], "dir2")["instances"][0]["unicast_peers"] == ["192.0.2.1"]


def test_config_filter_names_the_problems():
    hostvars = {"dir1": fact("192.0.2.1/24")}
    hostvars["dir1"]["_keepalived_record"]["vrrp_instances"] = [dict(INST, virtual_router_id=0)]
    with pytest.raises(AnsibleFilterError, match=r"host dir1, instance VI_1, field virtual_router_id: 0 is out of range 1\.\.255"):
        FilterModule().filters()["keepalived_config"](hostvars, ["dir1"], "dir1")


def test_unknown_host_is_reported():
    assert FilterModule().filters()["keepalived_preflight"]({"dir1": fact("192.0.2.1/24")}, ["dir1", "ghost"]) == [
        "host ghost: no keepalived settings found for this director"]
