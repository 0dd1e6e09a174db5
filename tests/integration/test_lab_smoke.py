"""Proves the lab itself: IPVS in the guest kernel, namespaces, NAT and DR traffic, isolation.

These tests use ipvsadm directly because they test the lab, not the collection.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _alternating(answers: list[str], expected: set[str]) -> None:
    assert set(answers) == expected, answers
    assert all(a != b for a, b in zip(answers, answers[1:])), f"round robin should alternate: {answers}"


@pytest.mark.lab
def test_ip_vs_module_loads_in_uml_guest() -> None:
    assert "User Mode Linux" in Path("/proc/cpuinfo").read_text()
    subprocess.run(["modprobe", "ip_vs"], check=True, timeout=30)
    assert Path("/proc/net/ip_vs").exists()
    out = subprocess.run(["ipvsadm", "-Ln"], check=True, capture_output=True, text=True, timeout=30).stdout
    assert out.startswith("IP Virtual Server version")


@pytest.mark.lab
def test_guest_root_is_an_overlay_and_only_the_share_is_a_host_mount() -> None:
    mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    by_point = {m[1]: m for m in mounts}
    assert by_point["/"][2] == "overlay"
    hostfs = [m for m in mounts if m[2] == "hostfs"]
    assert [m[1] for m in hostfs] == ["/lab/share"], hostfs
    assert "rw" in hostfs[0][3].split(",")
    for point in ("/tmp", "/run", "/dev/shm"):
        assert by_point[point][2] == "tmpfs"
    assert os.environ["LVS_LAB_SHARE"] == "/lab/share"
    assert Path(f"/lib/modules/{os.uname().release}/modules.dep").is_file()


@pytest.mark.lab
def test_each_namespace_has_its_own_ipvs_table(netns, ipvsadm) -> None:
    a, b = netns(), netns()
    ipvsadm(a).run("-A", "-t", "10.0.0.1:80", "-s", "rr")
    ipvsadm(a).run("-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2:80", "-m")
    ipvsadm(b).run("-A", "-u", "10.0.0.9:53", "-s", "wlc")
    assert ipvsadm(a).rules() == ["-A -t 10.0.0.1:80 -s rr", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1"]
    assert ipvsadm(b).rules() == ["-A -u 10.0.0.9:53 -s wlc"]
    assert ipvsadm().rules() == []
    assert "TCP  10.0.0.1:80 rr" in ipvsadm(a).list()


@pytest.mark.lab
def test_nat_round_robin_between_two_real_servers(topology, ipvsadm) -> None:
    front, back = topology.bridge("front"), topology.bridge("back")
    director = topology.host("dir", links=[(front, "10.1.0.1/24"), (back, "10.2.0.1/24")], forwarding=True)
    servers = [topology.host(f"rs{i}", links=[(back, f"10.2.0.1{i}/24")], gateway="10.2.0.1") for i in (1, 2)]
    client = topology.host("cli", links=[(front, "10.1.0.10/24")], gateway="10.1.0.1")
    for rs in servers:
        topology.http_server(rs, 80)
    lvs = ipvsadm(director)
    lvs.run("-A", "-t", "10.1.0.1:80", "-s", "rr")
    for i in (1, 2):
        lvs.run("-a", "-t", "10.1.0.1:80", "-r", f"10.2.0.1{i}:80", "-m")
    _alternating([client.curl("http://10.1.0.1/") for _request in range(6)], {"rs1", "rs2"})
    assert "Masq" in lvs.list()


@pytest.mark.lab
def test_nat_over_ipv6(topology, ipvsadm) -> None:
    front, back = topology.bridge("f6"), topology.bridge("b6")
    director = topology.host("dir", links=[(front, "2001:db8:1::1/64"), (back, "2001:db8:2::1/64")], forwarding=True)
    servers = [topology.host(f"rs{i}", links=[(back, f"2001:db8:2::1{i}/64")], gateway="2001:db8:2::1") for i in (1, 2)]
    client = topology.host("cli", links=[(front, "2001:db8:1::10/64")], gateway="2001:db8:1::1")
    for rs in servers:
        topology.http_server(rs, 80)
    lvs = ipvsadm(director)
    lvs.run("-A", "-t", "[2001:db8:1::1]:80", "-s", "rr")
    for i in (1, 2):
        lvs.run("-a", "-t", "[2001:db8:1::1]:80", "-r", f"[2001:db8:2::1{i}]:80", "-m")
    _alternating([client.curl("http://[2001:db8:1::1]/") for _request in range(6)], {"rs1", "rs2"})


@pytest.mark.lab
def test_direct_routing_with_vip_on_real_servers_lo(topology, ipvsadm) -> None:
    lan = topology.bridge("lan")
    vip = "10.3.0.100"
    director = topology.host("dir", links=[(lan, ["10.3.0.1/24", f"{vip}/32"])])
    servers = []
    for i in (1, 2):
        rs = topology.host(f"rs{i}", links=[(lan, f"10.3.0.1{i}/24")])
        rs.ip("addr", "add", f"{vip}/32", "dev", "lo")
        for key in ("all", "eth0"):
            rs.sysctl(f"net.ipv4.conf.{key}.arp_ignore", 1)
            rs.sysctl(f"net.ipv4.conf.{key}.arp_announce", 2)
        topology.http_server(rs, 80)
        servers.append(rs)
    client = topology.host("cli", links=[(lan, "10.3.0.10/24")])
    lvs = ipvsadm(director)
    lvs.run("-A", "-t", f"{vip}:80", "-s", "rr")
    for i in (1, 2):
        lvs.run("-a", "-t", f"{vip}:80", "-r", f"10.3.0.1{i}:80", "-g")
    _alternating([client.curl(f"http://{vip}/") for _request in range(6)], {"rs1", "rs2"})
    neigh = client.ip("neigh", "show", vip).stdout
    assert director.mac("eth0") in neigh, f"client should reach the VIP through the director: {neigh!r}"
    assert "Route" in lvs.list()


def _fresh_guest_check(me: str, other: str) -> None:
    assert os.environ.get("LVS_LAB_JOB", "").endswith(me), os.environ.get("LVS_LAB_JOB")
    Path(f"/tmp/lab-fresh-{me}").write_text(me)
    assert not Path(f"/tmp/lab-fresh-{other}").exists(), "another test's /tmp file is visible: not a fresh guest"
    # The guest's /tmp is its own tmpfs: the host never sees this file.
    assert len(list(Path("/tmp").glob("lab-fresh-*"))) == 1


@pytest.mark.lab(fresh=True)
def test_fresh_guest_a() -> None:
    _fresh_guest_check("test_fresh_guest_a", "test_fresh_guest_b")


@pytest.mark.lab(fresh=True)
def test_fresh_guest_b() -> None:
    _fresh_guest_check("test_fresh_guest_b", "test_fresh_guest_a")


def test_guest_cannot_write_to_the_host_outside_its_share_dir() -> None:
    """Runs on the host: boots a guest with ``python -m lab run`` and checks the host afterwards."""
    from lab import uml

    if os.environ.get("LVS_LAB_GUEST") == "1":
        pytest.skip("host-only test: guests do not nest")
    try:
        uml.find_uml()
    except uml.LabError as exc:
        pytest.fail(str(exc), pytrace=False)
    tag = uuid.uuid4().hex[:8]
    share = uml.new_share_dir(name=f"write-probe-{tag}")
    targets = [REPO / ".lab" / f"escape-{tag}", Path(f"/tmp/lvs-lab-escape-{tag}"), REPO / f"escape-{tag}"]
    script = " && ".join([f"echo x > {t}" for t in targets] + [f"cat {targets[0]}", "echo inside > /lab/share/ok"])
    try:
        proc = subprocess.run([sys.executable, "-m", "lab", "run", "--timeout", "120", "--share", str(share), "--",
                               "sh", "-c", script + " && exit 3"],
                              cwd=REPO, capture_output=True, text=True, timeout=3000, check=False)  # includes waiting for a free CPU slot while lab jobs run
        assert proc.returncode == 3, proc.stdout + proc.stderr  # the command's own exit code comes back
        assert proc.stdout.strip() == "x"  # the writes succeeded inside the guest (copy-on-write overlay)
        leaked = [str(t) for t in targets if t.exists()]
        assert not leaked, f"the guest wrote to the host: {leaked}"
        assert (share / "ok").read_text() == "inside\n"  # the share dir is the one read-write host mount
    finally:
        for t in targets:
            t.unlink(missing_ok=True)
        shutil.rmtree(share, ignore_errors=True)
