"""Rolling maintenance plan: entries per director, the healthy floor, drain and restore checks."""

from __future__ import annotations

import copy

from ansible_collections.lvs.ipvs.plugins.filter.lvs_rolling import FilterModule
from ansible_collections.lvs.ipvs.plugins.module_utils._rolling import connections, plan, present, restored


def rs(address, weight=1, active=0, inactive=0, port=8080):
    return {"address": address, "port": port, "forwarding": "nat", "weight": weight, "upper_threshold": 0,
            "lower_threshold": 0, "tunnel_type": None, "tunnel_port": None, "tunnel_checksum": None,
            "active_connections": active, "inactive_connections": inactive}


def table(*servers):
    return [{"protocol": "tcp", "family": "ipv4", "address": "192.0.2.10", "port": 80, "fwmark": None,
             "real_servers": list(servers)}]


TABLES = {"dir1": table(rs("10.0.0.11", 3), rs("10.0.0.12", 2), rs("10.0.0.13", 1)),
          "dir2": table(rs("10.0.0.11", 3), rs("10.0.0.12", 2), rs("10.0.0.13", 1))}


def test_plan_lists_the_entries_on_every_director():
    out = plan(TABLES, ["10.0.0.11"], 2)
    assert out["problems"] == [] and out["missing"] == []
    assert [(e["director"], e["service_label"], e["real_server"]["address"], e["real_server"]["weight"])
            for e in out["entries"]] == [("dir1", "tcp 192.0.2.10:80", "10.0.0.11", 3),
                                         ("dir2", "tcp 192.0.2.10:80", "10.0.0.11", 3)]
    assert out["entries"][0]["service"] == {"protocol": "tcp", "address": "192.0.2.10", "port": 80}


def test_floor_of_healthy_real_servers_is_never_crossed():
    assert plan(TABLES, ["10.0.0.11", "10.0.0.12"], 2)["problems"] == [
        "director dir1, service tcp 192.0.2.10:80: taking out 10.0.0.11, 10.0.0.12 leaves 1 healthy real server "
        "(10.0.0.13), below the floor of 2",
        "director dir2, service tcp 192.0.2.10:80: taking out 10.0.0.11, 10.0.0.12 leaves 1 healthy real server "
        "(10.0.0.13), below the floor of 2",
    ]


def test_quiesced_real_servers_do_not_count_as_healthy():
    tables = {"dir1": table(rs("10.0.0.11"), rs("10.0.0.12", 0), rs("10.0.0.13", 0))}
    assert plan(tables, ["10.0.0.11"], 1)["problems"] == [
        "director dir1, service tcp 192.0.2.10:80: taking out 10.0.0.11 leaves 0 healthy real servers (none), "
        "below the floor of 1"]


def test_missing_real_server_is_reported_not_planned():
    out = plan(TABLES, ["10.0.0.99"], 1)
    assert out == {"entries": [], "problems": [], "missing": ["10.0.0.99"]}


def test_connections_present_and_restored():
    entries = plan(TABLES, ["10.0.0.11"], 1)["entries"]
    busy = copy.deepcopy(TABLES)
    busy["dir1"][0]["real_servers"][0].update(weight=0, active_connections=2, inactive_connections=5)
    assert connections(busy, entries) == 2
    assert connections(busy, entries, inactive=True) == 7
    assert restored(busy, entries) == ["director dir1, service tcp 192.0.2.10:80, real server 10.0.0.11:8080: weight 0, "
                                       "expected 3"]
    gone = copy.deepcopy(TABLES)
    del gone["dir2"][0]["real_servers"][0]
    assert [e["director"] for e in present(gone, entries)] == ["dir1"]
    assert restored(gone, entries) == ["director dir2, service tcp 192.0.2.10:80, real server 10.0.0.11:8080: weight "
                                       "missing, expected 3"]
    assert restored(TABLES, entries) == []


def test_filters_take_looped_results_or_one_result():
    filters = FilterModule().filters()
    looped = {"results": [{"item": d, "services": s} for d, s in TABLES.items()]}
    entries = filters["lvs_rolling_plan"](looped, ["10.0.0.12"], 1)["entries"]
    assert len(entries) == 2
    one = {"services": TABLES["dir1"], "changed": False}
    assert filters["lvs_rolling_connections"](one, [e for e in entries if e["director"] == "dir1"]) == 0
    assert filters["lvs_rolling_restored"](one, [e for e in entries if e["director"] == "dir1"]) == []
