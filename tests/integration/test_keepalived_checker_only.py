"""keepalived as the health checker of a single director, without VRRP (real-kernel lab, lab/ha.py).

The lab's HA topology, dir1 only: static VIPs, keepalived_vrrp_instances empty. Proven: the run
converges and a second changes nothing; traffic reaches every real server; a real server whose
HTTP service stops is taken out of the kernel's table by keepalived (no request fails once it is
out) and comes back when it answers again.
"""
from __future__ import annotations

import re

import pytest

from tests.support.collection import ROOT

pytestmark = pytest.mark.lab

PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "keepalived_checker_only.yml"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from lab import ha

    c = ha.Cluster(tmp_path_factory.mktemp("checker"))
    try:
        c.create()
        yield c
    finally:
        c.destroy()


def _probe(cluster, count=30):
    return cluster.lvs_probe({"address": "192.0.2.10", "port": 80, "count": count, "max_failures": 0})


def test_checker_only_keepalived_takes_a_dead_real_server_out_and_back(cluster):
    run = cluster.playbook(PLAYBOOK)
    assert run.rc == 0, run.output
    again = cluster.playbook(PLAYBOOK)
    assert again.rc == 0 and re.search(r"dir1\s+: ok=\d+\s+changed=0 ", again.output), again.output
    assert "VI_" not in cluster.run("dir1", ["cat", "/etc/keepalived/keepalived.conf"]).stdout, "a VRRP instance was rendered"

    everyone = {"10.10.0.11:8080": 3, "10.10.0.12:8080": 2, "10.10.0.13:8080": 1}
    cluster.wait_for("the three real servers in the table", lambda: cluster.real_servers_in_table("dir1") == everyone, timeout=20)
    first = _probe(cluster)
    assert first["failed_requests"] == 0 and set(first["split"]) == {"rs1", "rs2", "rs3"}, first

    cluster.flag("rs3", "down", True)
    took = cluster.wait_for("rs3 out of the table", lambda: "10.10.0.13:8080" not in cluster.real_servers_in_table("dir1"), timeout=20)
    out = _probe(cluster)
    assert out["failed_requests"] == 0 and set(out["split"]) == {"rs1", "rs2"}, out

    cluster.flag("rs3", "down", False)
    back = cluster.wait_for("rs3 back in the table", lambda: cluster.real_servers_in_table("dir1") == everyone, timeout=20)
    print("checker-only keepalived: rs3 out of the table %.1f s after its HTTP service stopped, back %.1f s after it "
          "answered again; %d + %d requests, 0 failed" % (took, back, first["requests"], out["requests"]))
