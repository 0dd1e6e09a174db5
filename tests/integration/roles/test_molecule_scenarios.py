"""The molecule scenarios (molecule/nat, dr, tun, fullnat, ha_dr: site.yml; ha: keepalived), on lab machines.

Each scenario runs ``molecule test`` on the host (``lab(machines=True)``: in a lab lane, on its CPU)
against lab machines, one UML guest per host booting systemd, reached over ssh
(lab/machines.py): create (boot them: their kernels have no IPVS module loaded), prepare
(snapshot), check (site.yml in check mode), converge (first proves check mode changed nothing),
idempotence, verify (real traffic), side_effect (a real reboot of every director and real
server), verify, side_effect (the removal step: a service, a VIP, a real server with live
connections and a masquerade source taken out of the inventory), verify, destroy.

Beyond molecule's own verdict, this test reads molecule's output and asserts that the check-mode
run reported exactly the changes the real run then made (same changed tasks per host), and
prints each verify summary (the closing note of the issue quotes them). The HA scenario's verify
also measures failovers (lab/ha_machines.py: hard power-off of the master, cold boot); its figures
are checked here.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.collection import ROOT, ensure_importable

SCENARIOS = ("nat", "dr", "tun", "fullnat")
# A topology shares the 2 CPUs with the other lab lane: its guests run on one of them.
TIMEOUT = 1500
HA_TIMEOUT = 2000
HA_CYCLES = (10, 2)  # failovers of each verify (molecule/ha/verify.yml): before and after the reboot


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


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_molecule(scenario: str, log_path: Path, timeout: float = TIMEOUT) -> tuple[int, str, float]:
    """``molecule test -s SCENARIO`` on the host; its machines stop if this process dies (LVS_LAB_OWNER)."""
    start = time.monotonic()
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", NO_COLOR="1", PY_COLORS="0", LVS_LAB_OWNER=str(os.getpid()),
               ANSIBLE_COLLECTIONS_PATH=str(ensure_importable()),
               PATH=os.pathsep.join([bindir, os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")]))
    with open(log_path, "w") as log:
        proc = subprocess.run([os.path.join(bindir, "molecule"), "test", "-s", scenario], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                              preexec_fn=_die_with_parent)
    return proc.returncode, log_path.read_text(), time.monotonic() - start


def check_predicted(log: str, scenario: str, lvs_hosts: set[str]) -> tuple[set, set]:
    """Check mode changed nothing, predicted exactly the real run's changes; idempotence changed nothing."""
    check, converge = _section(log, scenario, "check"), _section(log, scenario, "converge")
    assert "no host changed since the snapshot" in converge, "check mode changed a host:\n" + converge[:4000]
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
    return predicted, made


def verify_outputs(log: str, scenario: str, runs: int = 2) -> list[str]:
    """The 'Verify output' block of each verify run (after converge, the reboot, the removal step), printed."""
    summaries = [_section(log, scenario, "verify", n) for n in range(runs)]
    blocks = []
    for n, text in enumerate(summaries):
        block = re.search(r"TASK \[Verify output\].*?(?=\n\nPLAY RECAP|\nPLAY RECAP)", text, re.S)
        assert block, text[-3000:]
        print("--- molecule %s, verify #%d ---\n%s" % (scenario, n + 1, block.group(0)))
        blocks.append(block.group(0))
    return summaries


def removal_step(log: str, scenario: str) -> str:
    """The removal step's verdict (the second side_effect): its run, the held connections, the request loop."""
    section = _section(log, scenario, "side_effect", 1)
    verdict = re.search(r"msg: '?(removal step: .*?)'?(?=\n\S|\nPLAY|\Z)", section, re.S)
    assert verdict, section[-4000:]
    return " ".join(verdict.group(1).split())


def boot_figures(log: str, scenario: str, lvs_hosts: set[str]) -> str:
    create = _section(log, scenario, "create")
    boots = re.search(r'boot_s:\s*all: ([\d.]+)', create)
    booted = re.findall(r"^\s+\S+: [\d.]+$", create.split("each:", 1)[-1].split("hosts:", 1)[0].split("waited_for_cpus", 1)[0], re.M)
    reboots = re.findall(r"msg: (\S+) rebooted in (\d+) s", _section(log, scenario, "side_effect"))
    assert reboots and {h for h, _s in reboots} >= lvs_hosts, reboots
    reboot_text = ", ".join("%s %s s" % r for r in sorted(reboots))
    return "%s machines running in %s s; reboots %s" % (len(booted), boots.group(1) if boots else "?", reboot_text)


@pytest.mark.lab(machines=True, timeout=TIMEOUT + 120)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_test(scenario, lab_share: Path):
    log_path = lab_share / ("molecule-%s.log" % scenario)
    returncode, log, elapsed = run_molecule(scenario, log_path)
    assert returncode == 0, "molecule test -s %s failed (rc %d):\n%s" % (scenario, returncode, log[-8000:])

    lvs_hosts = {"director", "rs1", "rs2"} if scenario in ("dr", "tun") else {"director"}
    predicted, made = check_predicted(log, scenario, lvs_hosts)
    summaries = verify_outputs(log, scenario, runs=3)
    assert "after the reboot" in summaries[1]
    assert "after the removal step" in summaries[2]
    print(removal_step(log, scenario))
    print("molecule test -s %s: %.0f s; %s; check predicted %d changed tasks, converge made %d"
          % (scenario, elapsed, boot_figures(log, scenario, lvs_hosts), len(predicted), len(made)))


@pytest.mark.lab(machines=True, timeout=HA_TIMEOUT + 120)
def test_molecule_ha(lab_share: Path):
    """keepalived pair on machines: split, health checks, sync daemon, failovers; before and after a reboot."""
    returncode, log, elapsed = run_molecule("ha", lab_share / "molecule-ha.log", timeout=HA_TIMEOUT)
    assert returncode == 0, "molecule test -s ha failed (rc %d):\n%s" % (returncode, log[-8000:])
    predicted, made = check_predicted(log, "ha", {"dir1", "dir2"})
    assert {host for _task, host in made} == {"dir1", "dir2"}, made
    verify_outputs(log, "ha")
    runs = [json.loads((lab_share / name).read_text()) for name in ("ha_figures.json", "ha_figures-2.json")]
    for n, figures in enumerate(runs, 1):
        failover = figures["failover"]
        print("verify #%d: failover over %d cycles (hard power-off of the master, cold boot): VIP moved median %.2f s, "
              "max %.2f s; client outage median %.2f s, max %.2f s; both held the VIP: %s; sync daemon: %s; %.0f s"
              % (n, failover["cycles"], failover["moved_median_s"], failover["moved_max_s"], failover["outage_median_s"],
                 failover["outage_max_s"], failover["both_held_vip"] or "never",
                 figures["sync_daemon"]["answer_after_failover"], figures["seconds"]))
        assert failover["cycles"] == HA_CYCLES[n - 1] and failover["moved_max_s"] <= 3.5 and not failover["both_held_vip"]
    print("molecule test -s ha: %.0f s; %s; check predicted %d changed tasks, converge made %d"
          % (elapsed, boot_figures(log, "ha", {"dir1", "dir2", "rs1", "rs2", "rs3"}), len(predicted), len(made)))


@pytest.mark.lab(machines=True, timeout=TIMEOUT + 600)
def test_molecule_ha_dr(lab_share: Path):
    """Two keepalived directors, DR, three real servers from one inventory: split, a killed master, reboot, removal."""
    returncode, log, elapsed = run_molecule("ha_dr", lab_share / "molecule-ha_dr.log", timeout=TIMEOUT + 480)
    assert returncode == 0, "molecule test -s ha_dr failed (rc %d):\n%s" % (returncode, log[-8000:])
    lvs_hosts = {"dir1", "dir2", "rs1", "rs2", "rs3"}
    predicted, made = check_predicted(log, "ha_dr", lvs_hosts)
    summaries = verify_outputs(log, "ha_dr", runs=3)
    assert "after the reboot" in summaries[1] and "after the removal step" in summaries[2]
    # The first verify kills the master (molecule/ha_dr/failover.yml); the later ones do not.
    verify1 = _section(log, "ha_dr", "verify", 0)
    failover = re.search(r"killed master \S+: .*?none failed after it", verify1, re.S)
    assert failover, verify1[-4000:]
    assert re.search(r"after the cold boot of \S+: VIP on \S+ only", verify1), verify1[-4000:]
    print("verify #1: %s" % " ".join(failover.group(0).split()))
    print(removal_step(log, "ha_dr"))
    print("molecule test -s ha_dr: %.0f s; %s; check predicted %d changed tasks, converge made %d"
          % (elapsed, boot_figures(log, "ha_dr", lvs_hosts), len(predicted), len(made)))
