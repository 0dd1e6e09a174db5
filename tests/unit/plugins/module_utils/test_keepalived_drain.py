"""Real servers leaving keepalived's pool: which ones, and the virtual servers that drain them."""

from __future__ import annotations

import copy

from ansible_collections.lvs.ipvs.plugins.module_utils._keepalived_preflight import draining, resolve

FRONT = {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddresses": ["192.0.2.10/24"]}
WEB = {"address": "192.0.2.10", "port": 80, "scheduler": "wrr", "forwarding": "dr",
       "checks": [{"type": "TCP_CHECK", "connect_timeout": 2}],
       "real_servers": [{"address": "10.0.0.11", "weight": 3}]}
DNS = {"address": "192.0.2.10", "port": 53, "protocol": "udp", "scheduler": "rr",
       "real_servers": [{"address": "10.0.0.11"}]}


def config(*services):
    record = {"group": "directors", "group_hosts": ["dir1"], "address": "192.0.2.1/24",
              "vrrp_instances": [copy.deepcopy(FRONT)], "virtual_servers": [copy.deepcopy(s) for s in services]}
    return resolve({"dir1": record}, "dir1")


def live_rs(address, port, forwarding="dr", weight=1, active=0, inactive=0):
    return {"address": address, "port": port, "forwarding": forwarding, "weight": weight, "upper_threshold": 0,
            "lower_threshold": 0, "tunnel_type": None, "tunnel_port": None, "tunnel_checksum": None,
            "active_connections": active, "inactive_connections": inactive, "persistent_connections": 0}


def live_svc(protocol, port, *real_servers):
    return {"family": "ipv4", "protocol": protocol, "address": "192.0.2.10", "port": port, "fwmark": None,
            "scheduler": "wrr", "real_servers": list(real_servers)}


def test_a_real_server_the_settings_dropped_is_kept_at_weight_0_without_checks():
    cfg = config(WEB)
    live = [live_svc("tcp", 80, live_rs("10.0.0.11", 80, weight=3), live_rs("10.0.0.12", 80, weight=2, active=4))]
    out = draining(cfg, live)
    assert out["leaving"] == [{"service": "tcp 192.0.2.10:80", "real_server": "10.0.0.12:80", "weight": 2,
                               "connections": 4, "drained": True, "busy": True}]
    assert out["busy"] == ["tcp 192.0.2.10:80 10.0.0.12:80"] and out["drain"]
    rss = out["virtual_servers"][0]["real_servers"]
    assert [(rs["head"], rs["weight"], rs["lvs_method"], len(rs["checks"])) for rs in rss] == [
        ("10.0.0.11 80", 3, "DR", 1), ("10.0.0.12 80", 0, "DR", 0)]
    # The settings themselves are not changed: configure.yml renders them without the leaving one.
    assert len(cfg["virtual_servers"][0]["real_servers"]) == 1


def test_a_leaving_real_server_at_weight_0_without_connections_is_no_longer_busy():
    live = [live_svc("tcp", 80, live_rs("10.0.0.11", 80, weight=3), live_rs("10.0.0.12", 80, weight=0))]
    out = draining(config(WEB), live)
    assert out["busy"] == [] and out["drain"] and out["leaving"][0]["busy"] is False


def test_inactive_connections_count_as_busy_like_ipvs_table():
    live = [live_svc("tcp", 80, live_rs("10.0.0.11", 80, weight=3), live_rs("10.0.0.12", 80, weight=0, inactive=1))]
    assert draining(config(WEB), live)["busy"] == ["tcp 192.0.2.10:80 10.0.0.12:80"]


def test_udp_real_servers_leave_at_once_and_are_not_rendered_back():
    live = [live_svc("udp", 53, live_rs("10.0.0.11", 53, "nat"), live_rs("10.0.0.12", 53, "nat", active=1))]
    out = draining(config(DNS), live)
    assert [(x["real_server"], x["drained"], x["busy"]) for x in out["leaving"]] == [("10.0.0.12:53", False, False)]
    assert not out["drain"] and out["busy"] == []
    assert [rs["head"] for rs in out["virtual_servers"][0]["real_servers"]] == ["10.0.0.11 53"]


def test_nothing_leaves_when_the_kernel_matches_or_lacks_the_service():
    cfg = config(WEB)
    for live in ([], [live_svc("tcp", 80, live_rs("10.0.0.11", 80, weight=3))], None,
                 [live_svc("tcp", 8080, live_rs("10.0.0.99", 8080))]):
        out = draining(cfg, live)
        assert (out["leaving"], out["busy"], out["drain"]) == ([], [], False)
        assert out["virtual_servers"] == cfg["virtual_servers"]


def test_a_tunnel_real_server_keeps_its_tunnel_method_while_it_drains():
    tun = dict(WEB, forwarding="tunnel", tunnel_type="gue", tunnel_port=6080)
    rs = dict(live_rs("10.0.0.12", 80, "tunnel"), tunnel_type="gue", tunnel_port=6080, tunnel_checksum="nocsum")
    out = draining(config(tun), [live_svc("tcp", 80, rs)])
    assert out["virtual_servers"][0]["real_servers"][-1]["lvs_method"] == "TUN type gue port 6080 nocsum"
