"""lvs_sysctl against the real kernel (UML lab): running values in a namespace, drop-in file, quartet."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.modules import run_module

pytestmark = pytest.mark.lab

DIRECTOR = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.send_redirects": 0, "net/ipv4/conf/lo/arp_ignore": True,
            "net.ipv4.vs.expire_nodest_conn": 1, "net.ipv4.vs.conn_reuse_mode": 2}


def running(ns, *keys):
    out = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-n", *keys], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return out.split("\n")[:len(keys)]


@pytest.fixture
def ns(netns, ipvsadm):  # ipvsadm: loads ip_vs, so net.ipv4.vs.* exists
    return netns()


def test_quartet_running_values_and_drop_in(ns, tmp_path):
    path = tmp_path / "90-lvs.conf"
    args = {"sysctls": DIRECTOR, "path": str(path), "namespace": ns}
    before = running(ns, "net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects", "net.ipv4.vs.conn_reuse_mode")
    checked = run_module("lvs_sysctl", args, check=True, diff=True)
    assert not checked.get("failed"), checked
    assert checked["changed"] and checked["file_changed"]
    assert not path.exists(), "check mode wrote the file"
    assert running(ns, "net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects", "net.ipv4.vs.conn_reuse_mode") == before
    applied = run_module("lvs_sysctl", args, diff=True)
    assert applied["changed"] and applied["changes"] == checked["changes"] and applied["diff"] == checked["diff"]
    assert {c["key"] for c in applied["changes"]} >= {"net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects",
                                                      "net.ipv4.conf.lo.arp_ignore", "net.ipv4.vs.conn_reuse_mode"}
    assert running(ns, "net.ipv4.ip_forward", "net.ipv4.conf.all.send_redirects", "net.ipv4.conf.lo.arp_ignore",
                   "net.ipv4.vs.expire_nodest_conn", "net.ipv4.vs.conn_reuse_mode") == ["1", "0", "1", "1", "2"]
    text = path.read_text()
    assert "net.ipv4.conf.lo.arp_ignore = 1\n" in text and "net.ipv4.vs.conn_reuse_mode = 2\n" in text
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    for check in (True, False):
        again = run_module("lvs_sysctl", args, check=check, diff=True)
        assert again["changed"] is False and again["changes"] == [] and not again["file_changed"], again
    # The file is applied at boot the way the platform does it (sysctl -p FILE in a fresh namespace).
    fresh = ns + "b"
    subprocess.run(["ip", "netns", "add", fresh], check=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", fresh, "sysctl", "-q", "-p", str(path)], check=True, timeout=30)
        assert running(fresh, "net.ipv4.ip_forward", "net.ipv4.vs.conn_reuse_mode") == ["1", "2"]
    finally:
        subprocess.run(["ip", "netns", "del", fresh], check=False, timeout=30)


def test_drift_of_one_running_value_is_repaired_without_rewriting_the_file(ns, tmp_path):
    path = tmp_path / "90-lvs.conf"
    args = {"sysctls": DIRECTOR, "path": str(path), "namespace": ns}
    assert run_module("lvs_sysctl", args)["changed"]
    mtime = path.stat().st_mtime_ns
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True, timeout=30)
    fixed = run_module("lvs_sysctl", args)
    assert fixed["changes"] == [{"key": "net.ipv4.ip_forward", "before": "0", "after": "1"}]
    assert fixed["file_changed"] is False and path.stat().st_mtime_ns == mtime
    assert running(ns, "net.ipv4.ip_forward") == ["1"]


def test_absent_interface_is_persisted_with_a_warning(ns, tmp_path):
    path = tmp_path / "90-tun.conf"
    result = run_module("lvs_sysctl", {"sysctls": {"net.ipv4.conf.nosuch0.rp_filter": 0}, "path": str(path),
                                       "namespace": ns})
    assert result["changed"] and result["changes"] == [] and result["file_changed"]
    assert "interface nosuch0 does not exist" in str(result["warnings"])


BAD = [
    ({"net.ipv4.ip_forwarding": 1}, "net.ipv4.ip_forwarding: unknown kernel parameter"),
    ({"net.ipv4.conf.all.arp_announce": 3}, "net.ipv4.conf.all.arp_announce: 3 is out of range 0..2"),
    ({"net.ipv4.conf.all.rp_filter": "strict"}, "net.ipv4.conf.all.rp_filter: 'strict' is not an integer"),
    ({"net.ipv4.tcp_rmem": "4096"}, "net.ipv4.tcp_rmem: '4096' has 1 field(s)"),
    ({"net.ipv4.vs.expire_nodest_conn": 2}, "net.ipv4.vs.expire_nodest_conn: 2 is out of range 0..1"),
]


def test_bad_input_fails_naming_the_key_and_writes_nothing(ns, tmp_path):
    path = tmp_path / "90-bad.conf"
    before = running(ns, "net.ipv4.ip_forward")
    for sysctls, message in BAD:
        for check in (True, False):
            # A good key first: nothing may be written when a later key is bad.
            result = run_module("lvs_sysctl", {"sysctls": dict({"net.ipv4.ip_forward": 1}, **sysctls), "path": str(path),
                                               "namespace": ns}, check=check)
            assert result.get("failed") and message in result["msg"], (sysctls, result)
    assert not path.exists()
    assert running(ns, "net.ipv4.ip_forward") == before


def test_state_absent_removes_the_drop_in(ns, tmp_path):
    path = tmp_path / "90-x.conf"
    args = {"sysctls": {"net.ipv4.ip_forward": 1}, "path": str(path), "namespace": ns}
    run_module("lvs_sysctl", args)
    gone = run_module("lvs_sysctl", {"path": str(path), "state": "absent"}, check=True)
    assert gone["changed"] and path.exists()
    assert run_module("lvs_sysctl", {"path": str(path), "state": "absent"})["changed"]
    assert not path.exists()
    assert run_module("lvs_sysctl", {"path": str(path), "state": "absent"})["changed"] is False
