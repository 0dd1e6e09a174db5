"""The HA demo: a keepalived pair of LVS-NAT directors built by the collection, then a failover.

Run it with ``python -m lab run --timeout 300 -- .venv/bin/python -m lab.ha_demo``. Inside the
guest it builds the topology of lab/ha.py (two directors, three real servers, a client: lab
hosts), runs playbooks/ha_demo.yml (the keepalived role: VRRP sync group, LVS-NAT wrr 3:2:1 with
HTTP health checks, the connection sync daemon), shows the traffic split from the client, then
kills the master twice (links down + SIGKILL; each director once) while the client keeps sending
requests, and prints how long the VIP took to move and how long the client saw no answer.
Exits non-zero if anything does not work. About a minute.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from lab import ha
from lab import netns as labnet

CYCLES = 2


def main() -> int:
    started = time.monotonic()
    labnet.load_ipvs()
    cluster = ha.Cluster(Path(tempfile.mkdtemp(prefix="ha-demo-")), lab="hademo")
    ok = True
    try:
        print("== lab: client 192.0.2.100; directors dir1, dir2 (front 192.0.2.1-2, back 10.10.0.2-3);")
        print("   real servers rs1-rs3 10.10.0.11-13 (HTTP :8080, weights 3:2:1), VIP 192.0.2.10 ==")
        cluster.create()
        print("== ansible-playbook playbooks/ha_demo.yml (role lvs.ipvs.keepalived on dir1 and dir2) ==")
        run = cluster.playbook("ha_demo.yml", {"keepalived_packages": []})  # keepalived is on the lab image
        recap = run.output[run.output.find("PLAY RECAP"):].strip()
        print(recap or run.output[-3000:])
        if run.rc != 0:
            print(run.output[-6000:])
            return 1
        print(f"   ({run.seconds:.0f} s)")
        master = ha.check_ready(cluster)
        print(f"== keepalived runs on both directors; {master} holds the VIP ==")
        print(cluster.ipvs(master, "-Ln").rstrip())
        print("== traffic: 60 requests from the client to http://192.0.2.10/ (lvs.ipvs.lvs_probe) ==")
        result = ha.probe(cluster, 60, ha.WEIGHTS, max_failures=0)
        print(f"   answered by {result['split']}, {result['failed_requests']} failed")
        ok = not result.get("failed") and not result["failed_requests"]
        print(f"== failover: kill the master {CYCLES} times (links down + SIGKILL), the client keeps asking ==")
        cluster.watch_addresses()
        try:
            cycles = ha.failover_cycles(cluster, CYCLES, report=lambda line: print("   " + line))
        finally:
            cluster.stop_watching()
        figures = ha.summary(cycles)
        print(f"   VIP moved in {', '.join('%.2f s' % c.moved_s for c in cycles)} "
              f"(advert_int 1, priorities 250/240, nopreempt); client outage "
              f"{', '.join('%.2f s' % c.outage_s for c in cycles if c.outage_s is not None)}; "
              f"both directors held the VIP: {figures['both_held_vip'] or 'never'}")
        ok = ok and not figures["both_held_vip"] and figures["moved_max_s"] <= ha.MOVED_MAX_S
        after = ha.probe(cluster, 30, {"rs1": 3, "rs2": 2, "rs3": 1}, max_failures=0)
        print(f"== after the failovers, through {cluster.master()}: {after['split']}, {after['failed_requests']} failed ==")
        ok = ok and not after.get("failed") and not after["failed_requests"]
    except (AssertionError, labnet.NetnsError) as exc:
        print(f"demo failed: {exc}")
        ok = False
    finally:
        cluster.destroy()
    print("HA demo %s in %.0f s" % ("PASSED" if ok else "FAILED", time.monotonic() - started))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
