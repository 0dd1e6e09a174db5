"""Lab machines (lab/machines.py): one UML guest per host, systemd as PID 1, ssh, real reboots.

These run on the host (``lab(machines=True)``) and boot their own machines:

- a fresh director: its kernel has no IPVS module loaded; check mode and reading the table leave
  it so; the real run loads ip_vs before the vs.* parameters; after a real reboot systemd loads it
  (modules-load.d) before systemd-sysctl sets them; a hard power-off keeps what was on the disk;
- nothing is left running (guests, switches, ssh relays, namespace) after ``down``, after the
  owner process is killed, and after the keeper itself is killed (``python -m lab clean``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab import machines as M
from lab import uml
from tests.support.collection import ROOT, ensure_importable

SPEC = {"hosts": [{"name": "director", "links": [{"segment": "lan", "addresses": ["192.0.2.1/24"]}]}]}


def sh(d: Path, command: str) -> str:
    return M.ssh(d, "director", command).stdout.strip()


def playbook(d: Path, tmp_path: Path, tasks: dict[str, str], check: bool = False) -> dict:
    """Run TASKS (name: module call) on the machine with ansible-playbook over ssh; their results by name."""
    (tmp_path / "inventory.yml").write_text(M.inventory(d))
    out = tmp_path / "results.json"
    body = "".join(f"- name: {name}\n{textwrap.indent(textwrap.dedent(call).strip(), '  ')}\n  register: r_{name}\n"
                   for name, call in tasks.items())
    # The results, written on the controller (check_mode: false: also after a check run).
    body += ("- name: results\n  delegate_to: localhost\n  check_mode: false\n"
             "  vars: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
             f"  ansible.builtin.copy: {{dest: {out}, mode: '0600', content: \"{{{{ {{"
             + ", ".join(f"'{n}': r_{n}" for n in tasks) + "} | to_json }}\"}\n")
    play = tmp_path / "play.yml"
    play.write_text("- hosts: director\n  gather_facts: false\n  tasks:\n" + textwrap.indent(body, "    "))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ensure_importable()), ANSIBLE_SSH_CONTROL_PATH_DIR=str(d / "cp"),
               ANSIBLE_PIPELINING="1", ANSIBLE_NOCOLOR="1")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"), str(play)]
    proc = subprocess.run(argv + (["--check"] if check else []), capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def leftovers(name: str, keeper: int) -> list[str]:
    """Processes and namespaces of topology NAME (keeper KEEPER) still there."""
    found = []
    tag = f"{uml.SHM_PREFIX}{keeper}-".encode()
    sock_dir = str(M.lab_dir(name)).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        try:
            zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if zombie:
            continue
        if tag in cmdline or (sock_dir in cmdline and b"uml_switch" in cmdline) or int(entry.name) == keeper:
            found.append(f"pid {entry.name}: {cmdline.replace(b'\0', b' ').decode(errors='replace')[:120]}")
    if Path("/run/netns", M.netns_of(name)).exists():
        found.append(f"netns {M.netns_of(name)}")
    return found


def wait_gone(name: str, keeper: int, timeout: float = 30.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = leftovers(name, keeper)
        if not left:
            return []
        time.sleep(0.5)
    return leftovers(name, keeper)


@pytest.mark.lab(machines=True)
def test_fresh_director_loads_ip_vs_before_its_sysctls_now_and_at_boot(tmp_path: Path):
    name = "t-fresh"
    started = time.monotonic()
    info = M.up(name, SPEC, owner=os.getpid())
    d = M.lab_dir(name)
    keeper = M.load_state(d)["keeper"]
    try:
        print(f"one machine running (systemd, ssh) {time.monotonic() - started:.1f} s after up: {info['boot_s']}")
        assert sh(d, "systemctl is-system-running") == "running"
        assert sh(d, "systemd-detect-virt") == "uml"
        assert sh(d, "grep -c '^ip_vs' /proc/modules || true") == "0", "ip_vs is loaded on a fresh machine"
        assert sh(d, "test -d /proc/sys/net/ipv4/vs && echo yes || echo no") == "no"

        tasks = {
            "sysctls": """
            lvs.ipvs.lvs_sysctl:
              path: /etc/sysctl.d/90-lvs-test.conf
              modules: [ip_vs, ip_vs_wrr]
              modules_path: /etc/modules-load.d/lvs-test.conf
              sysctls: {net.ipv4.vs.expire_nodest_conn: 1, net.ipv4.conf.all.send_redirects: 0}
            """,
            "table": """
            lvs.ipvs.ipvs_table:
              state: merged
              config: [{address: 192.0.2.10, port: 80, scheduler: wrr, real_servers: [{address: 192.0.2.11, forwarding: dr}]}]
            """,
        }
        predicted = playbook(d, tmp_path, tasks, check=True)
        assert predicted["sysctls"]["changed"] and predicted["sysctls"]["modules_loaded"] == ["ip_vs", "ip_vs_wrr"]
        assert {c["key"] for c in predicted["sysctls"]["changes"]} >= {"net.ipv4.vs.expire_nodest_conn"}
        assert predicted["table"]["changed"] and predicted["table"]["summary"]["services"] == {"before": 0, "after": 1}
        assert sh(d, "grep -c '^ip_vs' /proc/modules || true") == "0", "check mode loaded ip_vs"
        assert sh(d, "ls /etc/modules-load.d/lvs-test.conf 2>/dev/null || echo absent") == "absent"

        done = playbook(d, tmp_path, tasks)
        assert done["sysctls"]["changed"] and done["sysctls"]["modules_loaded"] == ["ip_vs", "ip_vs_wrr"]
        assert sh(d, "cat /proc/sys/net/ipv4/vs/expire_nodest_conn") == "1"
        assert sh(d, "ipvsadm -Sn") == "-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 192.0.2.11:80 -g -w 1"
        again = playbook(d, tmp_path, tasks)
        assert not again["sysctls"]["changed"] and not again["table"]["changed"]

        # A real reboot: the kernel starts without ip_vs; systemd-modules-load loads it from the
        # drop-in, then systemd-sysctl sets net.ipv4.vs.* (a value of 1 proves the order: before
        # the module loads the parameter does not exist).
        boots = M.boots(d, "director")
        t0 = time.monotonic()
        M.ssh(d, "director", "systemctl reboot", check=False)
        time.sleep(2)
        M.wait_running(d, ["director"], timeout=180)
        print(f"reboot: running again after {time.monotonic() - t0:.1f} s")
        assert M.boots(d, "director") == boots + 1
        assert sh(d, "cat /proc/sys/net/ipv4/vs/expire_nodest_conn") == "1"
        assert sh(d, "grep -o '^ip_vs_wrr' /proc/modules") == "ip_vs_wrr"
        order = sh(d, "systemctl show -p ActiveEnterTimestampMonotonic --value systemd-modules-load.service "
                      "systemd-sysctl.service").split()
        assert int(order[0]) <= int(order[1]), order

        # A hard power-off (the guest is killed) and a cold boot: the disk kept /etc.
        M.request(d, {"op": "poweroff", "hosts": ["director"]})
        assert not M.load_state(d)["hosts"][0]["powered"]
        M.request(d, {"op": "boot", "hosts": ["director"]})
        M.wait_running(d, ["director"], timeout=180)
        assert M.boots(d, "director") == boots + 2
        assert sh(d, "cat /etc/modules-load.d/lvs-test.conf").splitlines()[1:] == ["ip_vs", "ip_vs_wrr"]
        assert sh(d, "cat /proc/sys/net/ipv4/vs/expire_nodest_conn") == "1"
    finally:
        M.down(name)
    assert wait_gone(name, keeper) == []
    assert not d.exists()


@pytest.mark.lab(machines=True)
def test_nothing_left_running_when_the_owner_or_the_keeper_is_killed():
    # 1. The owner (the test run that booted the machines) is killed: the keeper tears down.
    owner = subprocess.Popen(["sleep", "600"])
    try:
        M.up("t-owner", SPEC, owner=owner.pid)
        keeper = M.load_state(M.lab_dir("t-owner"))["keeper"]
        assert leftovers("t-owner", keeper), "the topology should be running"
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_gone("t-owner", keeper) == []
    finally:
        if owner.poll() is None:
            owner.kill()
        M.down("t-owner")

    # 2. The keeper itself is killed: the guests' main processes and the switches die with it
    #    (PR_SET_PDEATHSIG); what cannot end by itself (the namespace, a UML address-space
    #    process that was being traced) is ended by `python -m lab clean`, which every lab run
    #    (and `lab.machines up`) does first.
    M.up("t-keeper", SPEC, owner=os.getpid())
    d = M.lab_dir("t-keeper")
    state = M.load_state(d)
    keeper, guest = state["keeper"], state["hosts"][0]["pid"]
    try:
        os.kill(keeper, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while uml._pid_alive(guest) or any("uml_switch" in line for line in leftovers("t-keeper", keeper)):
            assert time.monotonic() < deadline, leftovers("t-keeper", keeper)
            time.sleep(0.5)
        proc = subprocess.run([sys.executable, "-m", "lab", "clean"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=False, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert proc.returncode == 0, proc.stderr
        assert wait_gone("t-keeper", keeper, timeout=10) == []
    finally:
        M.down("t-keeper")
