"""molecule/ha in the real-kernel lab: the keepalived HA scenario, measured.

``molecule test -s ha`` runs in a guest of its own: create (six lab hosts, lab/ha.py), prepare
(snapshot), check (playbooks/ha_demo.yml in check mode), converge (first proves check mode
changed nothing), idempotence, verify (lvs_probe from the client; then lab/ha.py verify: split by
the director's counters, health check removal and return, the sync daemon keeping a connection
across a failover, 20 failovers measured), destroy.

Beyond molecule's verdict this test checks that check mode predicted exactly the changes the real
run made, and prints the verify report; the figures (ha_figures.json) stay in the lab results
directory for the closing note.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.collection import ROOT, ensure_importable

TIMEOUT = 840


def section(log: str, action: str, nth: int = 0) -> str:
    marks = [m.end() for m in re.finditer(r"\[ha > %s\] Executing" % action, log)]
    assert len(marks) > nth, "molecule never ran %s" % action
    start = marks[nth]
    nxt = re.search(r"\[ha > \w+\] Executing", log[start:])
    return log[start:start + nxt.start()] if nxt else log[start:]


def changed_tasks(text: str) -> set[tuple[str, str]]:
    out, task = set(), ""
    for line in text.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]", line)
        if header:
            task = header.group(1)
            continue
        hit = re.match(r"^changed: \[([^\]]+)\]", line)
        if hit and not task.startswith(("Compare every host", "Report")):
            out.add((task, hit.group(1)))
    return out


def recap(text: str) -> dict[str, dict[str, int]]:
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
            for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", text, re.M)}


@pytest.mark.lab(fresh=True)
def test_molecule_ha(lab_share: Path):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", NO_COLOR="1", PY_COLORS="0",
               ANSIBLE_COLLECTIONS_PATH=str(ensure_importable()))
    log_path = lab_share / "molecule-ha.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.run(["molecule", "test", "-s", "ha"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
    elapsed = time.monotonic() - start
    log = log_path.read_text()
    assert proc.returncode == 0, "molecule test -s ha failed (rc %d):\n%s" % (proc.returncode, log[-8000:])

    check, converge = section(log, "check"), section(log, "converge")
    assert "no host changed since the snapshot" in converge, "check mode changed a host:\n" + converge[:4000]
    predicted, made = changed_tasks(check), changed_tasks(converge)
    assert {host for _task, host in made} == {"dir1", "dir2"}, made
    assert predicted == made, "check mode predicted %s\nthe real run changed %s" % (
        sorted(predicted - made), sorted(made - predicted))
    idem = section(log, "idempotence")
    for host, counts in recap(idem).items():
        assert counts["changed"] == 0, (host, counts)

    verify = section(log, "verify")
    block = re.search(r"TASK \[Verify output\].*?(?=\nPLAY RECAP)", verify, re.S)
    assert block, verify[-3000:]
    print("--- molecule ha, verify ---\n%s" % block.group(0))
    figures = json.loads((lab_share / "ha_figures.json").read_text())
    failover = figures["failover"]
    print("molecule test -s ha: %.0f s; failover over %d cycles: VIP moved median %.2f s, max %.2f s; client outage "
          "median %.2f s, max %.2f s; both held the VIP: %s; sync daemon: %s" % (
              elapsed, failover["cycles"], failover["moved_median_s"], failover["moved_max_s"],
              failover["outage_median_s"], failover["outage_max_s"], failover["both_held_vip"] or "never",
              figures["sync_daemon"]["answer_after_failover"]))
    assert failover["cycles"] == 20 and failover["moved_max_s"] <= 3.5 and not failover["both_held_vip"]
