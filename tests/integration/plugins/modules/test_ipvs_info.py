"""ipvs_info against the real kernel (UML lab): the table as ipvsadm sees it, counters, connections."""

from __future__ import annotations

import subprocess
import time

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save, render_save
from tests.support.modules import ipvsadm, run_module, saved

pytestmark = pytest.mark.lab

RULES = """\
-A -t 10.0.0.1:80 -s rr -p 300 -M 255.255.255.0
-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 2 -x 50 -y 5
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 0
-A -u 10.0.0.1:53 -s sh -b sh-fallback
-a -u 10.0.0.1:53 -r 10.0.1.3:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -t [2001:db8::1]:443 -s wlc -p 60 -M 64
-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -g -w 7
-A -f 12 -6 -s mh -b mh-port
-a -f 12 -6 -r [2001:db8::11]:80 -i -w 1 --tun-type gre --tun-nocsum
"""


def restore(ns, text):
    subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", "-R"], input=text, text=True, check=True, timeout=30)


def test_info_returns_the_table_ipvsadm_built(netns):
    ns = netns()
    restore(ns, RULES)
    result = run_module("ipvs_info", {"namespace": ns, "stats": False})
    assert result["changed"] is False
    # What ipvs_info returns is exactly what ipvsadm reads (thresholds included, which -Sn drops).
    assert render_save(result["services"]) == saved(ns)
    assert result["saved"] == RULES
    assert result["services"] == parse_save(RULES)
    assert result["version"].startswith("IP Virtual Server version")


def test_info_output_feeds_back_as_configuration(netns):
    """Round trip: gathered services recreate the same table in another namespace through the modules."""
    src, dst = netns(), netns()
    restore(src, RULES)
    services = run_module("ipvs_info", {"namespace": src})["services"]
    for svc in services:
        real_servers = svc.pop("real_servers")
        svc.pop("stats"), svc.pop("rates")
        args = {k: v for k, v in svc.items() if v is not None}
        assert run_module("ipvs_service", dict(args, namespace=dst))["changed"]
        key = {k: svc[k] for k in ("protocol", "address", "port", "fwmark", "family") if svc[k] is not None}
        for rs in real_servers:
            rs = {k: v for k, v in rs.items() if v is not None and k not in (
                "stats", "rates", "active_connections", "inactive_connections", "persistent_connections")}
            assert run_module("ipvs_real_server", dict(rs, service=key, namespace=dst))["changed"]
    assert saved(dst) == saved(src)
    assert ipvsadm(dst, "-Ln", "--thresholds") == ipvsadm(src, "-Ln", "--thresholds")


def test_info_counts_real_traffic_and_lists_connections(topology):
    """NAT service with two HTTP real servers: counters and connection entries reflect real requests."""
    topo = topology
    topo.bridge("front")
    topo.bridge("back")
    director = topo.host("director", links=[("front", "192.0.2.1/24"), ("back", "10.10.0.1/24")])
    director.sysctl("net.ipv4.ip_forward", "1")
    client = topo.host("client", links=[("front", "192.0.2.100/24")], gateway="192.0.2.1")
    servers = [topo.host("rs%d" % i, links=[("back", "10.10.0.1%d/24" % i)], gateway="10.10.0.1") for i in (1, 2)]
    for srv in servers:
        topo.http_server(srv, 80, srv.name)
    director.run(["ip", "addr", "add", "192.0.2.10/32", "dev", "lo"])
    ns = director.ns
    assert run_module("ipvs_service", {"address": "192.0.2.10", "port": 80, "scheduler": "rr", "namespace": ns})["changed"]
    for i in (1, 2):
        assert run_module("ipvs_real_server", {"service": {"address": "192.0.2.10", "port": 80}, "address": "10.10.0.1%d" % i,
                                               "forwarding": "nat", "namespace": ns})["changed"]
    answers = [client.curl("http://192.0.2.10/", max_time=3) for attempt in range(4)]
    assert sorted(answers) == ["rs1", "rs1", "rs2", "rs2"]
    # The kernel folds its per-CPU counters into the exported ones every 2 s: poll, bounded.
    for attempt in range(8):
        info = run_module("ipvs_info", {"namespace": ns, "connections": True})
        (svc,) = info["services"]
        if svc["stats"]["conns"] == 4:
            break
        time.sleep(1)
    assert svc["stats"]["conns"] == 4 and svc["stats"]["inpkts"] >= 4 * 5
    assert [rs["stats"]["conns"] for rs in svc["real_servers"]] == [2, 2]
    assert sum(rs["inactive_connections"] + rs["active_connections"] for rs in svc["real_servers"]) == 4
    conns = info["connections"]
    assert len(conns) == 4
    assert {c["client"]["address"] for c in conns} == {"192.0.2.100"}
    assert {c["virtual"]["address"] for c in conns} == {"192.0.2.10"}
    assert sorted(c["real_server"]["address"] for c in conns) == ["10.10.0.11", "10.10.0.11", "10.10.0.12", "10.10.0.12"]
