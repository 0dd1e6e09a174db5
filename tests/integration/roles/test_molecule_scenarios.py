"""The molecule scenarios of the topology roles (molecule/nat, dr, tun), in the real-kernel lab.

Each scenario runs ``molecule test`` inside its own UML guest (``lab(fresh=True)``, so the two
lanes run two scenarios at once): create (lab hosts), prepare (snapshot), check (site.yml in
check mode), converge (first proves check mode changed nothing), idempotence, verify (real
traffic), side_effect (simulated reboot of every director and real server), verify, destroy.

Beyond molecule's own verdict, this test reads molecule's output and asserts that the check-mode
run reported exactly the changes the real run then made (same changed tasks per host), and
prints each verify summary (the closing note of the issue quotes them).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.collection import ROOT, ensure_importable

SCENARIOS = ("nat", "dr", "tun")
TIMEOUT = 840


def _section(log: str, scenario: str, action: str, nth: int = 0) -> str:
    marks = [m.end() for m in re.finditer(r"\[%s > %s\] Executing" % (scenario, action), log)]
    assert len(marks) > nth, "molecule never ran %s" % action
    start = marks[nth]
    nxt = re.search(r"\[%s > \w+\] Executing" % scenario, log[start:])
    return log[start:start + nxt.start()] if nxt else log[start:]


def changed_tasks(section: str) -> set[tuple[str, str]]:
    """(task, host) of every 'changed' result of a playbook run (loop items counted once)."""
    out, task = set(), ""
    for line in section.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]", line)
        if header:
            task = header.group(1)
            continue
        hit = re.match(r"^changed: \[([^\]]+)\]", line)
        if hit and not task.startswith(("Compare every host", "Report")):
            out.add((task, hit.group(1)))
    return out


def recap(section: str) -> dict[str, dict[str, int]]:
    out = {}
    for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", section, re.M):
        out[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return out


@pytest.mark.lab(fresh=True)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_test(scenario, lab_share: Path):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", NO_COLOR="1", PY_COLORS="0",
               ANSIBLE_COLLECTIONS_PATH=str(ensure_importable()))
    log_path = lab_share / ("molecule-%s.log" % scenario)
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.run(["molecule", "test", "-s", scenario], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
    elapsed = time.monotonic() - start
    log = log_path.read_text()
    assert proc.returncode == 0, "molecule test -s %s failed (rc %d):\n%s" % (scenario, proc.returncode, log[-8000:])

    check, converge = _section(log, scenario, "check"), _section(log, scenario, "converge")
    assert "no host changed since the snapshot" in converge, "check mode changed a host:\n" + converge[:4000]
    lvs_hosts = {"director", "rs1", "rs2"} if scenario != "nat" else {"director"}
    predicted, made = changed_tasks(check), changed_tasks(converge)
    assert {host for _task, host in made} >= lvs_hosts, made
    assert predicted == made, "check mode predicted %s\nthe real run changed %s" % (
        sorted(predicted - made), sorted(made - predicted))
    rc, rv = recap(check), recap(converge)
    for host in lvs_hosts:
        assert rc[host]["changed"] == rv[host]["changed"] > 0, (host, rc[host], rv[host])
    idem = _section(log, scenario, "idempotence")
    assert "Idempotence completed successfully" in log or "idempotence] Executed: Successful" in log, idem[-3000:]
    for host, counts in recap(idem).items():
        assert counts["changed"] == 0, (host, counts)

    summaries = [_section(log, scenario, "verify", n) for n in (0, 1)]
    for n, text in enumerate(summaries):
        block = re.search(r"TASK \[Verify output\].*?(?=\n\nPLAY RECAP|\nPLAY RECAP)", text, re.S)
        assert block, text[-3000:]
        print("--- molecule %s, verify #%d ---\n%s" % (scenario, n + 1, block.group(0)))
    assert "after 1 simulated reboot" in summaries[1]
    print("molecule test -s %s: %.0f s; check predicted %d changed tasks, converge made %d" % (
        scenario, elapsed, len(predicted), len(made)))
