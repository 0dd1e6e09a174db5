"""A playbook with only the three modules reproduces a table ipvsadm built (ipvsadm -Sn identical)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save, render_restore
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import service_key
from tests.support.ansible import ansible_playbook
from tests.support.modules import ipvsadm, saved

pytestmark = pytest.mark.lab

GOLDEN = Path(__file__).resolve().parents[1] / "unit" / "golden"
# Size only (each item is one module run): schedulers are covered by the ipvs_service tests;
# fwmark_max trips ipvsadm's overflowing sort, so its -Sn order is not comparable as text.
SKIP = {"big_table", "many_real_servers", "schedulers", "fwmark_max"}


def golden_union() -> str:
    """The union of the golden tables (first one wins on a shared service key), as restore text."""
    services = {}
    for path in sorted(p for p in GOLDEN.glob("*.save") if p.stem not in SKIP):
        for svc in parse_save(path.read_text()):
            services.setdefault(service_key(svc), svc)
    return render_restore(services.values())


def test_playbook_reproduces_the_union_of_golden_tables(netns):
    src, dst = netns(), netns()
    rules = golden_union()
    assert rules.count("-A ") >= 20, "golden scenarios missing"
    # ipvsadm itself builds the source table.
    subprocess.run(["ip", "netns", "exec", src, "ipvsadm", "-R"], input=rules, text=True, check=True, timeout=60)
    assert saved(src).count("-A ") == rules.count("-A ")
    first = ansible_playbook("reproduce_table.yml", {"source_ns": src, "target_ns": dst})
    assert first.rc == 0, first.output
    assert saved(dst) == saved(src)
    assert ipvsadm(dst, "-Ln", "--thresholds") == ipvsadm(src, "-Ln", "--thresholds")
    second = ansible_playbook("reproduce_table.yml", {"source_ns": src, "target_ns": dst})
    assert second.rc == 0, second.output
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", second.output), second.output
