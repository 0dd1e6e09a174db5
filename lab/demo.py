"""The demo: hosts as namespaces in a lab guest, a NAT and a DR service built by the collection.

Run it with ``make demo`` (``python -m lab run -- python -m lab.demo``). Inside the guest it
creates a client, a director, two NAT real servers and two DR real servers; runs
playbooks/lab_demo.yml (the modules, over netlink, in the director's namespace); then sends
requests to each VIP from the client and prints who answered. Exits non-zero unless both
services alternate between their two real servers.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from lab import netns as labnet

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 6
NAT_VIP, DR_VIP = "192.0.2.10", "192.0.2.20"


def build(topo: labnet.Topology) -> tuple[labnet.Host, labnet.Host]:
    topo.bridge("front")
    topo.bridge("back")
    client = topo.host("client", links=[("front", "192.0.2.100/24")])
    director = topo.host("director", links=[("front", ["192.0.2.1/24", NAT_VIP + "/32", DR_VIP + "/32"]),
                                            ("back", "10.10.0.1/24")], forwarding=True)
    for i in (1, 2):
        rs = topo.host("nat-rs%d" % i, links=[("back", "10.10.0.1%d/24" % i)], gateway="10.10.0.1")
        topo.http_server(rs, 8080)
    for i in (1, 2):
        rs = topo.host("dr-rs%d" % i, links=[("front", "192.0.2.2%d/24" % i)])
        # DR: the VIP on loopback, never answered for in ARP.
        rs.ip("addr", "add", DR_VIP + "/32", "dev", "lo")
        for iface in ("all", "eth0"):
            rs.sysctl("net.ipv4.conf.%s.arp_ignore" % iface, 1)
            rs.sysctl("net.ipv4.conf.%s.arp_announce" % iface, 2)
        topo.http_server(rs, 80)
    return client, director


def playbook(director: labnet.Host) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.support.ansible import ansible_playbook  # the same runner the tests use

    run = ansible_playbook(ROOT / "playbooks" / "lab_demo.yml", {
        "director_ns": director.ns,
        "nat_real_servers": ["10.10.0.11", "10.10.0.12"],
        "dr_real_servers": ["192.0.2.21", "192.0.2.22"],
    })
    print(run.output)
    return run.rc


def probe(client: labnet.Host, name: str, vip: str) -> bool:
    answers = []
    for n in range(1, REQUESTS + 1):
        body = client.curl("http://%s/" % vip, max_time=3, check=False) or "(no answer)"
        answers.append(body)
        print("  %s %s  request %d -> answered by %s" % (name, vip, n, body))
    alternating = all(a != b for a, b in zip(answers, answers[1:])) and len(set(answers)) == 2
    print("  %s: %s" % (name, "alternates between %s" % " and ".join(sorted(set(answers))) if alternating
                        else "DID NOT alternate: %s" % answers))
    return alternating


def main() -> int:
    start = time.monotonic()
    labnet.load_ipvs()
    with labnet.Topology() as topo:
        client, director = build(topo)
        print("== lab: client, director, nat-rs1/2 (10.10.0.11-12:8080), dr-rs1/2 (192.0.2.21-22) ==")
        if playbook(director) != 0:
            print("playbook failed")
            return 1
        print("== traffic from the client ==")
        ok = probe(client, "NAT", NAT_VIP)
        ok = probe(client, "DR ", DR_VIP) and ok
        neigh = client.run(["ip", "neigh", "show", DR_VIP]).stdout.strip()
        print("  client's neighbour entry for the DR VIP: %s (director eth0 MAC %s)" % (neigh, director.mac("eth0")))
        time.sleep(2.5)  # the kernel refreshes the exported counters every 2 s
        print("== ipvsadm -Ln --stats in the director (read only) ==")
        print(director.run(["ipvsadm", "-Ln", "--stats"]).stdout)
    print("demo %s in %.1f s" % ("PASSED" if ok else "FAILED", time.monotonic() - start))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
