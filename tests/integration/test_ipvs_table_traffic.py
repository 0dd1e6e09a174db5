"""ipvs_table with real traffic (UML lab): draining keeps live connections, convergence drops no request."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.modules import ipvsadm, run_module, saved
from tests.support.traffic import HELD_CLIENT, HOLD_SERVER, LOAD

pytestmark = pytest.mark.lab

VIP = "192.0.2.10"


def read_line(proc, timeout):
    """One line of a spawned process's stdout, waiting at most ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=timeout):
            raise AssertionError("no output within %s s" % timeout)
    return proc.stdout.readline().decode().strip()


def nat_lab(topo, servers, port, program):
    """client -- director (NAT, VIP) -- real servers rs1..rsN running ``program``."""
    topo.bridge("front")
    topo.bridge("back")
    client = topo.host("client", links=[("front", "192.0.2.100/24")])
    director = topo.host("director", links=[("front", ["192.0.2.1/24", VIP + "/32"]), ("back", "10.10.0.1/24")],
                         forwarding=True)
    for i in range(1, servers + 1):
        rs = topo.host("rs%d" % i, links=[("back", "10.10.0.1%d/24" % i)], gateway="10.10.0.1")
        if program == "http":
            topo.http_server(rs, port)
        else:
            proc = rs.spawn([sys.executable, "-c", HOLD_SERVER, str(port), rs.name], stdout=subprocess.PIPE)
            assert read_line(proc, 15) == "ready"
    return client, director


def service(port, *servers):
    return [{"address": VIP, "port": port, "scheduler": "rr",
             "real_servers": [{"address": "10.10.0.1%d" % i, "forwarding": "nat"} for i in servers]}]


def in_background(func, *args, **kwargs):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", func(*args, **kwargs)), daemon=True)
    thread.start()
    return thread, box


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))


def test_drained_server_keeps_its_live_connection_until_it_ends(topology):
    client, director = nat_lab(topology, 2, 9000, "hold")
    ns = director.ns
    assert run_module("ipvs_table", {"config": service(9000, 1), "namespace": ns})["changed"]
    held = client.spawn([sys.executable, "-c", HELD_CLIENT, VIP, "9000", "6"], stdout=subprocess.PIPE)
    assert read_line(held, 10) == "rs1"
    start = time.monotonic()
    thread, box = in_background(run_module, "ipvs_table", {"config": service(9000, 2), "state": "overridden",
                                                           "drain_timeout": 60, "namespace": ns})
    wait_for(lambda: "10.10.0.12:9000" in saved(ns), 15, "the new real server")
    assert "-a -t 192.0.2.10:9000 -r 10.10.0.11:9000 -m -w 0" in saved(ns)
    time.sleep(2)
    # The connection is alive: rs1 stays, at weight 0, and still answers it.
    assert "-r 10.10.0.11:9000 -m -w 0" in saved(ns) and thread.is_alive()
    assert read_line(held, 15) == "reset"
    reset_at = time.monotonic() - start
    thread.join(timeout=40)
    result = box["result"]
    assert not result.get("failed"), result
    (drained,) = result["drained"]
    assert drained["real_server"] == "10.10.0.11:9000" and drained["connections"] == 0
    assert reset_at <= drained["waited"] < 40
    assert saved(ns) == "-A -t 192.0.2.10:9000 -s rr\n-a -t 192.0.2.10:9000 -r 10.10.0.12:9000 -m -w 1\n"
    assert result["commands"] == ["ipvsadm -a -t 192.0.2.10:9000 -r 10.10.0.12:9000 -m -w 1",
                                  "ipvsadm -e -t 192.0.2.10:9000 -r 10.10.0.11:9000 -m -w 0",
                                  "ipvsadm -d -t 192.0.2.10:9000 -r 10.10.0.11:9000"]


def test_drain_timeout_removes_a_server_whose_connection_lives_on(topology):
    client, director = nat_lab(topology, 2, 9000, "hold")
    ns = director.ns
    assert run_module("ipvs_table", {"config": service(9000, 1, 2), "namespace": ns})["changed"]
    held = client.spawn([sys.executable, "-c", HELD_CLIENT, VIP, "9000", "60"], stdout=subprocess.PIPE)
    first = read_line(held, 10)
    keep = 2 if first == "rs1" else 1
    start = time.monotonic()
    result = run_module("ipvs_table", {"config": service(9000, keep), "state": "overridden", "drain_timeout": 3,
                                       "namespace": ns})
    took = time.monotonic() - start
    (drained,) = result["drained"]
    assert drained["connections"] == 1 and 3 <= drained["waited"] < 6 and took < 15
    assert saved(ns).count("-a ") == 1
    assert "ActiveConn" in ipvsadm(ns, "-Ln")


def test_converging_to_new_real_servers_drops_no_request(topology, lab_share):
    client, director = nat_lab(topology, 4, 80, "http")
    ns = director.ns
    assert run_module("ipvs_table", {"config": service(80, 1, 2), "namespace": ns})["changed"]
    load = client.spawn([sys.executable, "-c", LOAD, VIP, "80", "50000", "14"], stdout=subprocess.PIPE)
    assert read_line(load, 10) == "started"
    time.sleep(3)
    # Make before break: rs3 and rs4 are added, rs1 and rs2 drained, then removed.
    result = run_module("ipvs_table", {"config": service(80, 3, 4), "state": "overridden", "drain_timeout": 5,
                                       "namespace": ns})
    assert not result.get("failed"), result
    report = json.loads(read_line(load, 40))
    assert report["failures"] == [] and report["requests"] >= 2000, report
    assert set(report["split"]) == {"rs1", "rs2", "rs3", "rs4"}, report
    # Once the new servers answer, the old ones never do again.
    switch = next(i for i, body in report["changes"] if body in ("rs3", "rs4"))
    assert all(body in ("rs3", "rs4") for i, body in report["changes"] if i > switch + 2), report["changes"]
    summary = "converge under load: %(requests)d requests in %(seconds)s s, split %(split)s, 0 failures" % report
    (Path(lab_share) / "converge_under_load.txt").write_text(summary + "\n")
