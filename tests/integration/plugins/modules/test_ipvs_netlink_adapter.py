"""The netlink adapter against the real kernel (UML lab): the struct decoder reads what pyroute2 reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save, render_restore
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import service_key

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
