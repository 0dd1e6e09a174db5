"""Rolling maintenance when something goes wrong, in the real-kernel lab (lab/ha.py hosts).

The directors' tables are set with ipvsadm (no keepalived: nothing else touches the weights),
tcp 192.0.2.10:80 -> rs1..rs3 :8080 with weights 3, 2, 1 on both. The records of the weights to
restore go to /run/lvs.ipvs/rolling: in the lab every host has its own /run, while /var/lib is
the guest's, shared by both directors.

1. a maintenance task fails: the play fails saying the weights were restored, the kernel holds the
   weights from before on both directors and the records are gone; with a batch of two where only
   the second real server fails, both are restored;
2. a run was killed after its drain (its records on both directors, rs1 at weight 0 in the kernel):
   check mode shows the recorded weight and changes nothing; the next run restores weight 3 (not 0)
   from the record, says so, and removes the records.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.lab

DIRECTORS = ("dir1", "dir2")
WEIGHTS = {"10.10.0.11:8080": 3, "10.10.0.12:8080": 2, "10.10.0.13:8080": 1}
RECORDS = "/run/lvs.ipvs/rolling"
FAST = {"rolling_record_dir": RECORDS, "rolling_verify_timeout": 4, "rolling_drain_timeout": 4}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from lab import ha

    c = ha.Cluster(tmp_path_factory.mktemp("rolling-recovery"))
    try:
        c.create()
        yield c
    finally:
        c.destroy()


@pytest.fixture
def lab(cluster):
    """Both directors with the table of weights 3, 2, 1 and no record."""
    for name in DIRECTORS:
        lines = ["-A -t 192.0.2.10:80 -s wrr"] + [f"-a -t 192.0.2.10:80 -r {rs} -m -w {w}" for rs, w in WEIGHTS.items()]
        cluster.run(name, ["sh", "-c", f"rm -rf {RECORDS}; ipvsadm -C && printf '%s\\n' \"$@\" | ipvsadm -R", "-", *lines])
        assert cluster.real_servers_in_table(name) == WEIGHTS
    return cluster


def records(cluster, name):
    """file name -> content of the records on a director."""
    res = cluster.run(name, ["sh", "-c", f'cd {RECORDS} 2>/dev/null || exit 0; for f in *.json; do '
                                         f'if [ -e "$f" ]; then printf "%s\\t%s\\n" "$f" "$(tr -d "\\n" < "$f")"; fi; done'])
    return dict(line.split("\t", 1) for line in res.stdout.splitlines() if line)


def section(output, task):
    """The output of the task named ``task`` (up to the next task)."""
    parts = [part for part in output.split("\nTASK [")[1:] if part.startswith(task + "]")]
    assert len(parts) == 1, f"task {task!r} ran {len(parts)} times: {output}"
    return parts[0]


def tables(cluster):
    return {name: cluster.real_servers_in_table(name) for name in DIRECTORS}


def failing_tasks():
    from tests.support.collection import ROOT

    return str(ROOT / "tests" / "integration" / "playbooks" / "rolling_recovery" / "tasks" / "failing.yml")


def test_failed_maintenance_restores_the_weights_and_fails_the_play(lab):
    run = lab.playbook("rolling_maintenance.yml", dict(FAST, rolling_maintenance_tasks=failing_tasks()))
    assert run.rc != 0
    assert "TASK [The record holds the weight from before the drain]" in run.output
    assert ("Rolling maintenance of rs1 failed (rs1, task 'The upgrade fails': the upgrade of rs1 failed). The weights "
            "were restored: director dir1, service tcp 192.0.2.10:80, real server 10.10.0.11:8080 weight 3; director "
            "dir2, service tcp 192.0.2.10:80, real server 10.10.0.11:8080 weight 3.") in run.output, run.output
    for task in ("Drain (weight 0 in place, connections kept)",
                 "Rescue - restore the recorded weights (where the entry is still in the table)"):
        changed = sorted(line.split("]")[0] for line in section(run.output, task).splitlines() if line.startswith("changed:"))
        assert changed == ["changed: [rs1 -> dir1", "changed: [rs1 -> dir2"], (task, run.output)
    assert "RESTORE FAILED" not in run.output
    assert len([line for line in run.output.splitlines() if line.startswith("TASK [Drain")]) == 1, "a later batch ran"
    assert tables(lab) == {d: WEIGHTS for d in DIRECTORS}
    assert {d: records(lab, d) for d in DIRECTORS} == {"dir1": {}, "dir2": {}}
    print(f"failed maintenance of rs1: weights restored on both directors, play failed, in {run.seconds:.0f} s")


def test_failure_of_one_real_server_of_a_batch_restores_the_whole_batch(lab):
    run = lab.playbook("rolling_maintenance.yml", dict(FAST, rolling_batch_size=2, rolling_fail_on=["rs2"],
                                                       rolling_maintenance_tasks=failing_tasks()))
    assert run.rc != 0
    assert "Rolling maintenance of rs1, rs2 failed (rs2, task 'The upgrade fails': the upgrade of rs2 failed)" in run.output, \
        run.output
    for director in DIRECTORS:
        for rs, weight in (("10.10.0.11", 3), ("10.10.0.12", 2)):
            assert (f"director {director}, service tcp 192.0.2.10:80, real server {rs}:8080 weight {weight}"
                    in run.output.split("The weights were restored: ", 1)[-1]), run.output
    assert tables(lab) == {d: WEIGHTS for d in DIRECTORS}
    assert {d: records(lab, d) for d in DIRECTORS} == {"dir1": {}, "dir2": {}}


def test_a_killed_run_leaves_a_record_the_next_run_restores(lab):
    # What a run killed after its drain leaves: the records it wrote before the drain, and weight 0.
    for name in DIRECTORS:
        record = {"format": 1, "director": name, "real_server": "10.10.0.11", "entries": [{
            "service": {"protocol": "tcp", "address": "192.0.2.10", "port": 80}, "service_label": "tcp 192.0.2.10:80",
            "real_server": {"address": "10.10.0.11", "port": 8080, "forwarding": "nat", "weight": 3,
                            "upper_threshold": 0, "lower_threshold": 0, "tunnel_type": None, "tunnel_port": None,
                            "tunnel_checksum": None}}]}
        lab.run(name, ["sh", "-c", f'mkdir -p {RECORDS} && printf "%s" "$1" > {RECORDS}/10.10.0.11.json '
                                   f'&& ipvsadm -e -t 192.0.2.10:80 -r 10.10.0.11:8080 -m -w 0', "-", json.dumps(record)])
    killed = dict(WEIGHTS, **{"10.10.0.11:8080": 0})
    left = {d: records(lab, d) for d in DIRECTORS}
    assert tables(lab) == {d: killed for d in DIRECTORS} and all(left[d] for d in DIRECTORS)

    check = lab.playbook("rolling_maintenance.yml", dict(FAST, rolling_hosts="rs1"), "--check")
    assert check.rc == 0, check.output
    for director in DIRECTORS:
        assert (f"director {director}, service tcp 192.0.2.10:80, real server 10.10.0.11:8080: restore weight 3 (record "
                f"of an interrupted run: {RECORDS}/10.10.0.11.json; the table has 0)") in check.output, check.output
    assert tables(lab) == {d: killed for d in DIRECTORS}, "check mode changed the kernel"
    assert {d: records(lab, d) for d in DIRECTORS} == left, "check mode changed the records"

    run = lab.playbook("rolling_maintenance.yml", dict(FAST, rolling_hosts="rs1"))
    assert run.rc == 0, run.output
    for director in DIRECTORS:
        assert (f"director {director}, service tcp 192.0.2.10:80, real server 10.10.0.11:8080: weight 3 from the record "
                f"{RECORDS}/10.10.0.11.json of an interrupted run, not 0 from the table") in run.output, run.output
    assert tables(lab) == {d: WEIGHTS for d in DIRECTORS}
    assert {d: records(lab, d) for d in DIRECTORS} == {"dir1": {}, "dir2": {}}
    print(f"record of a killed run: check mode {check.seconds:.0f} s, restored weight 3 in {run.seconds:.0f} s")
