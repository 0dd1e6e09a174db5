"""The keepalived role and the rolling maintenance playbook in the real-kernel lab (lab/ha.py).

One guest, one HA topology, in order:

1. check mode on fresh directors reports the changes (with a diff that has no password) and
   changes nothing; the real run installs, configures and starts keepalived; a second run
   changes nothing (no reload either);
2. rolling maintenance refuses a batch that would go below the floor, then maintains the three
   real servers one by one while a client sends requests: not one fails;
3. pre-flight failures (two mistakes at once) stop both directors before any change, each problem
   named exactly;
4. a changed weight shows in check mode and is applied with a reload: same keepalived PIDs,
   same VIP holder, new weight in the kernel.
"""
from __future__ import annotations

import hashlib
import re
import time

import pytest

pytestmark = pytest.mark.lab

DIRECTORS = ("dir1", "dir2")
PASSWORD = "lvs-demo"  # the playbook's demo password: it must never show in any output
CONF = "/etc/keepalived/keepalived.conf"
SECRETS = "/etc/keepalived/secrets.conf"
FAST = {"keepalived_packages": []}  # the package install is covered once, by the converge test


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from lab import ha

    c = ha.Cluster(tmp_path_factory.mktemp("ha-role"))
    try:
        c.create()
        yield c
    finally:
        c.destroy()


def files(cluster):
    """(mode, sha256) of the configuration files of each director; None when absent."""
    out = {}
    for name in DIRECTORS:
        for path in (CONF, SECRETS):
            res = cluster.run(name, ["sh", "-c", f'stat -c %a "{path}" && cat "{path}"'], check=False)
            out[(name, path)] = None if res.returncode else (res.stdout.split("\n", 1)[0],
                                                             hashlib.sha256(res.stdout.encode()).hexdigest())
    return out


def pids(cluster):
    return {name: cluster.keepalived_pids(name) for name in DIRECTORS}


def test_check_mode_then_converge_then_idempotent(cluster):
    assert all(v is None for v in files(cluster).values())
    check = cluster.playbook("ha_demo.yml", None, "--check", "--diff")
    assert check.rc == 0, check.output
    assert check.changed() >= 4, check.output
    assert "+    virtual_router_id 51" in check.output and "+        weight 3" in check.output, check.output
    assert PASSWORD not in check.output
    assert all(v is None for v in files(cluster).values()), "check mode wrote a file"
    assert pids(cluster) == {"dir1": [], "dir2": []}, "check mode started keepalived"

    first = cluster.playbook("ha_demo.yml")
    assert first.rc == 0, first.output
    assert PASSWORD not in first.output
    assert "Install the keepalived package" in first.output
    state = files(cluster)
    for name in DIRECTORS:
        assert state[(name, CONF)][0] == "640" and state[(name, SECRETS)][0] == "600"
        conf = cluster.run(name, ["cat", CONF]).stdout
        assert PASSWORD not in conf and "auth_pass $LVS_AUTH_0_VI_FRONT" in conf
        assert PASSWORD in cluster.run(name, ["cat", SECRETS]).stdout
        assert cluster.run(name, ["systemctl", "is-enabled", "keepalived"]).stdout.strip() == "enabled"
    cluster.master()
    running = pids(cluster)
    assert all(running.values()), running

    second = cluster.playbook("ha_demo.yml")
    assert second.rc == 0, second.output
    assert second.changed() == 0, second.output
    assert "RUNNING HANDLER" not in second.output
    assert pids(cluster) == running
    print(f"check mode {check.seconds:.0f} s, converge {first.seconds:.0f} s, idempotent {second.seconds:.0f} s")


def test_rolling_maintenance_refuses_to_go_below_the_floor(cluster):
    before = {d: cluster.real_servers_in_table(d) for d in DIRECTORS}
    run = cluster.playbook("rolling_maintenance.yml", {"rolling_batch_size": 2, "rolling_floor": 2})
    assert run.rc != 0
    assert ("director dir1, service tcp 192.0.2.10:80: taking out 10.10.0.11, 10.10.0.12 leaves 1 healthy real "
            "server (10.10.0.13), below the floor of 2") in run.output, run.output
    assert "TASK [Drain" not in run.output, "the play went on after the floor check"
    assert {d: cluster.real_servers_in_table(d) for d in DIRECTORS} == before


def test_rolling_maintenance_one_by_one_without_a_failed_request(cluster):
    from tests.support.collection import ROOT

    before = {d: cluster.real_servers_in_table(d) for d in DIRECTORS}
    probe = cluster.client_probe(duration=240, timeout=2, pause=0.1)
    try:
        cluster.wait_for("the client's first answers", lambda: probe.successes() >= 3, timeout=15, step=0.2)
        run = cluster.playbook("rolling_maintenance.yml", {
            "rolling_floor": 2,
            "rolling_maintenance_tasks": str(ROOT / "tests" / "integration" / "playbooks" / "rolling_maintenance_tasks.yml"),
            "rolling_verify_from": "client",
        })
        time.sleep(1)
    finally:
        probe.stop()
    assert run.rc == 0, run.output
    failed = [line for line in probe.lines if not line[1]]
    answered = {who for _t, ok, who in probe.lines if ok}
    assert failed == [], f"requests failed during the rolling maintenance: {failed[:10]}"
    assert answered == {"rs1", "rs2", "rs3"}
    for name in ("rs1", "rs2", "rs3"):
        log = cluster.run(name, ["cat", "/tmp/lvs-maintained.log"], check=False).stdout
        assert f"maintained {name}" in log
    assert {d: cluster.real_servers_in_table(d) for d in DIRECTORS} == before
    assert len(re.findall(r"TASK \[Drain", run.output)) == 3
    print(f"rolling maintenance of 3 real servers in {run.seconds:.0f} s: {probe.successes()} requests answered, "
          f"{len(failed)} failed")


# Both mistakes in one run: pre-flight reports every problem of every director at once.
PREFLIGHT_MESSAGES = [
    "host dir1, instance VI_FRONT, field auth_pass: is 13 characters long; keepalived uses only the first 8, so "
    "directors whose passwords differ after that would still agree: use at most 8 characters",
    "host dir2, instance VI_GATEWAY, field auth_pass: is 13 characters long; keepalived uses only the first 8, "
    "so directors whose passwords differ after that would still agree: use at most 8 characters",
    "host dir1, instance VI_FRONT, field virtual_ipaddresses[0]: 192.0.2.2 is also a real address of director "
    "dir2 (keepalived_address): keepalived must own the VIP, do not configure it statically",
]


def test_preflight_failure_stops_every_director_before_any_change(cluster):
    before = files(cluster)
    running = pids(cluster)
    run = cluster.playbook("ha_demo.yml", dict(FAST, ha_password="much-too-long", ha_vip="192.0.2.2"))
    assert run.rc != 0
    for message in PREFLIGHT_MESSAGES:
        assert message in run.output, run.output
    assert "much-too-long" not in run.output
    assert "Render keepalived.conf" not in run.output, "a task after the checks ran"
    assert files(cluster) == before and pids(cluster) == running


def test_changed_weight_shows_in_check_mode_and_is_applied_with_a_reload(cluster):
    master = cluster.master()
    main_pids = {name: cluster.main_pid(name) for name in DIRECTORS}
    pool = [{"address": "10.10.0.11", "weight": 3}, {"address": "10.10.0.12", "weight": 2},
            {"address": "10.10.0.13", "weight": 5}]
    check = cluster.playbook("ha_demo.yml", dict(FAST, ha_pool=pool), "--check", "--diff")
    assert check.rc == 0, check.output
    assert "-        weight 1" in check.output and "+        weight 5" in check.output, check.output
    assert PASSWORD not in check.output
    assert all(cluster.real_servers_in_table(d)["10.10.0.13:8080"] == 1 for d in DIRECTORS)

    run = cluster.playbook("ha_demo.yml", dict(FAST, ha_pool=pool))
    assert run.rc == 0, run.output
    assert "RUNNING HANDLER [lvs.ipvs.keepalived : Reload keepalived]" in run.output
    assert "RUNNING HANDLER [lvs.ipvs.keepalived : Restart keepalived]" not in run.output
    cluster.wait_for("weight 5 in both tables",
                     lambda: all(cluster.real_servers_in_table(d).get("10.10.0.13:8080") == 5 for d in DIRECTORS),
                     timeout=15)
    assert {name: cluster.main_pid(name) for name in DIRECTORS} == main_pids, "keepalived restarted instead of reloading"
    assert cluster.vip_holders() == [master], "the reload moved the VIP"
