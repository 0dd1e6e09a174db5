"""The netlink adapter against the real kernel (UML lab): the struct decoder reads what pyroute2 reads,
the one-service read what the dump reads, and the encoder sends what pyroute2 sends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save, render_restore
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table, service_key
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import plan

pytestmark = pytest.mark.lab

GOLDEN = Path(__file__).resolve().parents[3] / "unit" / "golden"
COMPARE = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSAdapter
adapter = IPVSAdapter()
for stats in (False, True):
    # No traffic in this namespace, so the counters cannot move between the two reads.
    ours, theirs = adapter.dump(stats=stats), adapter.dump_pyroute2(stats=stats)
    assert ours == theirs, (stats, [s for s, p in zip(ours, theirs) if s != p][:1])
print(json.dumps({"services": len(ours), "real_servers": sum(len(s["real_servers"]) for s in ours)}))
'''


def test_struct_dump_equals_pyroute2_dump_on_every_golden_table(netns):
    services = {}
    for path in sorted(GOLDEN.glob("*.save")):
        for svc in parse_save(path.read_text()):
            services.setdefault(service_key(svc), svc)
    ns = netns()
    subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", "-R"], input=render_restore(services.values()), text=True,
                   check=True, timeout=60)
    collections = str(Path(__file__).resolve().parents[4] / ".collections")
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", COMPARE, collections], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert '"services": %d' % len(services) in out.stdout


ONE = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import service_key
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSAdapter
adapter = IPVSAdapter(bulk=False)
table = IPVSAdapter().dump(stats=True)
for svc in table:
    # The one-service read (a get and a dump of its real servers) gives what the whole dump gives.
    assert adapter.service(svc) == {k: v for k, v in svc.items() if k not in ("stats", "rates")} | {
        "real_servers": [{k: v for k, v in r.items() if k not in ("stats", "rates", "active_connections",
                          "inactive_connections", "persistent_connections")} for r in svc["real_servers"]]}, svc
    assert adapter.service(svc, stats=True) == svc
missing = [dict(table[0], port=(table[0]["port"] or 0) + 1) if table[0].get("port") is not None else table[0],
           {"family": "ipv6", "fwmark": 123456, "protocol": None, "address": None, "port": None}]
missing = [m for m in missing if service_key(m) not in {service_key(s) for s in table}]
assert missing and all(adapter.service(m) is None for m in missing)
print(json.dumps({"services": len(table), "missing": len(missing)}))
'''


def test_one_service_read_equals_its_part_of_the_dump(netns):
    services = {}
    for path in sorted(GOLDEN.glob("*.save")):
        for svc in parse_save(path.read_text()):
            services.setdefault(service_key(svc), svc)
    ns = netns()
    subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", "-R"], input=render_restore(services.values()), text=True,
                   check=True, timeout=60)
    collections = str(Path(__file__).resolve().parents[4] / ".collections")
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", ONE, collections], capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert '"services": %d' % len(services) in out.stdout


APPLY = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSAdapter
ops = json.loads(open(sys.argv[2]).read())
adapter = IPVSAdapter(bulk=False)
(adapter.apply if sys.argv[3] == "ours" else adapter.apply_pyroute2)(ops)
print(json.dumps(adapter.dump()))
'''


def test_apply_sends_what_pyroute2_sends(netns, tmp_path):
    """Every golden table built op by op through our encoder and through pyroute2, then edited
    and partly removed: the kernel ends with the same table both ways."""
    services = {}
    for path in sorted(GOLDEN.glob("*.save")):
        for svc in parse_save(path.read_text()):
            services.setdefault(service_key(svc), svc)
    table = normalize_table(list(services.values()))
    edited = [dict(s, scheduler="rr", scheduler_flags=[],
                   real_servers=[dict(r, weight=3 if r["weight"] != 3 else 4) for r in s["real_servers"][1:]])
              for s in table[::2]]
    steps = [plan(table, [], "merged"), plan(edited, table, "replaced"), plan(table[:3], table, "deleted")]
    collections = str(Path(__file__).resolve().parents[4] / ".collections")
    results = {}
    for way in ("ours", "pyroute2"):
        ns = netns()
        for i, ops in enumerate(steps):
            path = tmp_path / ("%s-%d.json" % (way, i))
            path.write_text(json.dumps(ops))
            out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", APPLY, collections, str(path), way],
                                 capture_output=True, text=True, timeout=120, check=False)
            assert out.returncode == 0, out.stderr
            results.setdefault(way, []).append(json.loads(out.stdout))
    assert results["ours"] == results["pyroute2"]
    assert len(results["ours"][0]) == len(table) and len(results["ours"][2]) == len(table) - 3
