"""lvs_vip against the real kernel (UML lab): VIPs on a dummy device, lo and tunl0 in a namespace."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.modules import run_module

pytestmark = pytest.mark.lab

HOST4 = "192.0.2.1/24"
HOST6 = "2001:db8::1/64"


def ip(ns, *args, check=True):
    return subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=check, timeout=30)


def addrs(ns, dev="d0"):
    """address/prefixlen -> (label or None, scope, flags) of every global address of ``dev``."""
    out = {}
    for link in json.loads(ip(ns, "-j", "address", "show", "dev", dev).stdout):
        for a in link.get("addr_info", []):
            if a.get("scope") == "link":
                continue
            flags = tuple(f for f in ("nodad", "deprecated") if a.get(f))
            out["%s/%d" % (a["local"], a["prefixlen"])] = (a.get("label"), a.get("scope"), flags)
    return out


@pytest.fixture
def ns(netns):
    name = netns()
    ip(name, "link", "add", "d0", "type", "dummy")
    ip(name, "link", "set", "d0", "up")
    ip(name, "address", "add", HOST4, "dev", "d0")
    ip(name, "address", "add", HOST6, "dev", "d0", "nodad")
    return name


def vip(ns, tmp_path, check=False, diff=True, **args):
    args.setdefault("interface", "d0")
    args.setdefault("state_path", str(tmp_path / "vips" / "d0.json"))
    return run_module("lvs_vip", dict(args, namespace=ns), check=check, diff=diff)


def test_quartet_ipv4_and_ipv6_with_label(ns, tmp_path):
    start = addrs(ns)
    checked = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:DB8:0:0::10/128", "192.0.2.11/32"], check=True)
    assert not checked.get("failed"), checked
    assert checked["changed"] and checked["added"] == ["192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128"]
    assert checked["commands"] == ["ip address add 192.0.2.10/32 dev d0 label d0:lvs scope global",
                                   "ip address add 192.0.2.11/32 dev d0 label d0:lvs scope global",
                                   "ip address add 2001:db8::10/128 dev d0 nodad preferred_lft 0"]
    assert addrs(ns) == start, "check mode changed the interface"
    assert not (tmp_path / "vips").exists(), "check mode wrote the state file"
    applied = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:DB8:0:0::10/128", "192.0.2.11/32"])
    assert applied["changed"] and applied["state_file_changed"]
    for key in ("commands", "added", "addresses", "diff"):
        assert applied[key] == checked[key], key
    assert applied["diff"]["before"] == "" and applied["diff"]["after"] == "192.0.2.10/32\n192.0.2.11/32\n2001:db8::10/128\n"
    now = addrs(ns)
    assert now["192.0.2.10/32"] == ("d0:lvs", "global", ())
    assert now["2001:db8::10/128"][2] == ("nodad", "deprecated")
    assert now[HOST4] == start[HOST4] and now[HOST6] == start[HOST6]
    state = json.loads((tmp_path / "vips" / "d0.json").read_text())
    assert state["ipv6"] == ["2001:db8::10/128"] and state["interface"] == "d0"
    for check in (True, False):
        again = vip(ns, tmp_path, addresses=["192.0.2.11", "2001:db8::10", "192.0.2.10"], check=check)
        assert again["changed"] is False and again["commands"] == [] and not again["state_file_changed"], again
    assert addrs(ns) == now


def test_exact_removes_only_what_it_owns(ns, tmp_path):
    ip(ns, "address", "add", "198.51.100.9/32", "dev", "d0")                    # the host's, no label
    ip(ns, "address", "add", "198.51.100.8/32", "dev", "d0", "label", "d0:ka")  # another tool's label
    ip(ns, "address", "add", "2001:db8::99/128", "dev", "d0", "nodad")          # by hand
    assert vip(ns, tmp_path, addresses=["192.0.2.10", "192.0.2.11", "2001:db8::10", "2001:db8::11"])["changed"]
    foreign = {k: v for k, v in addrs(ns).items() if k not in ("192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128",
                                                               "2001:db8::11/128")}
    checked = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], state="exact", check=True)
    assert checked["removed"] == ["192.0.2.11/32", "2001:db8::11/128"] and checked["added"] == []
    assert "192.0.2.11/32" in addrs(ns)
    done = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], state="exact")
    assert done["removed"] == checked["removed"] and done["commands"] == checked["commands"]
    assert done["commands"] == ["ip address del 192.0.2.11/32 dev d0", "ip address del 2001:db8::11/128 dev d0"]
    assert done["addresses"] == ["192.0.2.10/32", "2001:db8::10/128"]
    assert done["diff"]["before"].splitlines() == ["192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128", "2001:db8::11/128"]
    now = addrs(ns)
    assert set(now) == set(foreign) | {"192.0.2.10/32", "2001:db8::10/128"}
    assert all(now[k] == v for k, v in foreign.items())
    # exact with an empty list: every owned address goes, the others stay.
    empty = vip(ns, tmp_path, addresses=[], state="exact")
    assert empty["removed"] == ["192.0.2.10/32", "2001:db8::10/128"] and empty["addresses"] == []
    assert addrs(ns) == foreign
    assert not (tmp_path / "vips" / "d0.json").exists()


def test_a_listed_address_it_does_not_own_is_left_alone(ns, tmp_path):
    ip(ns, "address", "add", "198.51.100.9/32", "dev", "d0")
    ip(ns, "address", "add", "2001:db8::99/128", "dev", "d0", "nodad")
    res = vip(ns, tmp_path, addresses=["198.51.100.9", "2001:db8::99", "192.0.2.1"], state="exact")
    assert res["changed"] is False and res["commands"] == [] and res["addresses"] == []
    assert res["not_owned"] == ["192.0.2.1/24", "198.51.100.9/32", "2001:db8::99/128"]
    assert "addresses[0]: 198.51.100.9/32 is already on d0 but not owned" in str(res["warnings"])
    gone = vip(ns, tmp_path, addresses=["198.51.100.9", "2001:db8::99"], state="absent")
    assert gone["changed"] is False and gone["removed"] == []
    assert {"198.51.100.9/32", "2001:db8::99/128", HOST4} <= set(addrs(ns))


def test_absent_listed_then_all(ns, tmp_path):
    vip(ns, tmp_path, addresses=["192.0.2.10", "192.0.2.11", "2001:db8::10", "2001:db8::11"])
    part = vip(ns, tmp_path, addresses=["192.0.2.11", "2001:db8::11", "192.0.2.99"], state="absent")
    assert part["removed"] == ["192.0.2.11/32", "2001:db8::11/128"]
    assert part["addresses"] == ["192.0.2.10/32", "2001:db8::10/128"]
    assert json.loads((tmp_path / "vips" / "d0.json").read_text())["ipv6"] == ["2001:db8::10/128"]
    checked = vip(ns, tmp_path, state="absent", check=True)
    assert checked["removed"] == ["192.0.2.10/32", "2001:db8::10/128"] and "192.0.2.10/32" in addrs(ns)
    everything = vip(ns, tmp_path, state="absent")
    assert everything["removed"] == checked["removed"] and everything["state_file_changed"]
    assert set(addrs(ns)) == {HOST4, HOST6}
    assert not (tmp_path / "vips" / "d0.json").exists()
    assert vip(ns, tmp_path, state="absent")["changed"] is False


def test_ownership_survives_a_reboot_and_a_fresh_run(ns, tmp_path):
    """After a reboot the boot unit adds the addresses again (same label, nodad); the state file is on disk."""
    wanted = ["192.0.2.10", "192.0.2.11", "2001:db8::10", "2001:db8::11"]
    first = vip(ns, tmp_path, addresses=wanted, state="exact")
    lines = first["commands"]
    for addr in first["addresses"]:
        ip(ns, "address", "del", addr, "dev", "d0")
    assert set(addrs(ns)) == {HOST4, HOST6}
    for line in lines:  # what the boot unit runs (ip address add, as the module says)
        ip(ns, *line.split()[1:])
    again = vip(ns, tmp_path, addresses=wanted, state="exact")
    assert again["changed"] is False and again["addresses"] == first["addresses"]
    fewer = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], state="exact")
    assert fewer["removed"] == ["192.0.2.11/32", "2001:db8::11/128"]
    # The default state file (per namespace, under /var/lib) works across runs too.
    # Another task on the same interface: its own label and (default) state file, so it owns none of the above.
    other = {"interface": "d0", "namespace": ns, "label": "d0:b"}
    default = run_module("lvs_vip", dict(other, addresses=["2001:db8::20", "192.0.2.20"]))
    assert default["state_path"] == "/var/lib/lvs.ipvs/vips/netns-%s/d0.json" % ns
    assert default["added"] == ["192.0.2.20/32", "2001:db8::20/128"]
    assert run_module("lvs_vip", dict(other, addresses=[], state="exact"))["removed"] == default["added"]
    assert not os.path.exists(default["state_path"])
    # Without its state file the IPv6 VIPs are no longer owned: never removed (safe), IPv4 still owned by label.
    os.unlink(tmp_path / "vips" / "d0.json")
    lost = vip(ns, tmp_path, addresses=[], state="exact")
    assert lost["removed"] == ["192.0.2.10/32"] and "2001:db8::10/128" in addrs(ns)


def test_changes_in_place_and_scope_replacement(ns, tmp_path):
    vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"])
    pref = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], ipv6_deprecated=False)
    assert pref["updated"] == ["2001:db8::10/128"]
    assert pref["commands"] == ["ip address change 2001:db8::10/128 dev d0 nodad preferred_lft forever"]
    assert addrs(ns)["2001:db8::10/128"][2] == ("nodad",)
    scoped = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], ipv6_deprecated=False, scope="host")
    assert scoped["commands"] == ["ip address del 192.0.2.10/32 dev d0",
                                  "ip address add 192.0.2.10/32 dev d0 label d0:lvs scope host"]
    assert addrs(ns)["192.0.2.10/32"] == ("d0:lvs", "host", ())
    assert vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], ipv6_deprecated=False, scope="host")["changed"] is False


BAD = [
    ({"addresses": ["192.0.2.10", "192.0.2.0/24"]}, "addresses[1]: '192.0.2.0/24': a VIP is a single address"),
    ({"addresses": ["192.0.2.10", "bogus"]}, "addresses[1]: 'bogus' is not an IPv4 or IPv6 address"),
    ({"addresses": ["2001:db8::10", "2001:DB8::10/128"]}, "addresses[1]: 2001:db8::10 is the same address as addresses[0]"),
    ({"addresses": ["192.0.2.10", "224.0.0.1"]}, "addresses[1]: 224.0.0.1 is not usable as a VIP"),
    ({"addresses": ["192.0.2.10"], "label": "eth0:lvs"}, "label: 'eth0:lvs' must be the interface name"),
    ({"addresses": ["192.0.2.10"], "label": "d0"}, "label: 'd0' must be the interface name"),
    ({"addresses": ["192.0.2.10"], "label": "d0:waytoolongtag"}, "label: 'd0:waytoolongtag' has 16 characters"),
    ({"addresses": ["192.0.2.10"], "interface": "nosuch0"}, "interface: no device nosuch0 here"),
    ({"addresses": ["192.0.2.10"], "interface": "a/b"}, "interface: 'a/b' is not a device name"),
    ({"addresses": ["192.0.2.10"], "namespace": "no-such-ns"}, "namespace: network namespace 'no-such-ns' not found"),
]


def test_bad_input_names_the_field_and_changes_nothing(ns, tmp_path):
    start = addrs(ns)
    for args, message in BAD:
        for check in (True, False):
            full = dict(args, interface=args.get("interface", "d0"), state_path=str(tmp_path / "s.json"))
            if "namespace" not in args:
                full["namespace"] = ns
            res = run_module("lvs_vip", full, check=check)
            assert res.get("failed") and message in res["msg"], (args, res)
    (tmp_path / "s.json").write_text('{"something": "else"}\n')
    res = vip(ns, tmp_path, addresses=["192.0.2.10"], state_path=str(tmp_path / "s.json"))
    assert res.get("failed") and "state_path: %s is not a state file of lvs.ipvs.lvs_vip" % (tmp_path / "s.json") in res["msg"]
    assert addrs(ns) == start
    assert not (tmp_path / "vips").exists()


def test_a_refused_change_undoes_the_earlier_ones(ns, tmp_path):
    ip(ns, "netns", "exec", ns, "true", check=False)
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.d0.disable_ipv6=1"], check=True, timeout=30)
    start = addrs(ns)
    res = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10", "192.0.2.11"])
    assert res.get("failed"), res
    assert res["msg"].startswith("addresses[1]: the kernel refused `ip address add 2001:db8::10/128 dev d0 nodad preferred_lft 0`")
    assert res["msg"].endswith("the 2 earlier change(s) of this task were undone"), res["msg"]
    assert addrs(ns) == start
    assert not (tmp_path / "vips" / "d0.json").exists()


def test_state_file_that_cannot_be_written_changes_nothing(ns, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(ro)], check=True, timeout=30)
    try:
        start = addrs(ns)
        res = vip(ns, tmp_path, addresses=["192.0.2.10", "2001:db8::10"], state_path=str(ro / "vips" / "d0.json"))
        assert res.get("failed") and res["msg"].startswith("state_path: cannot write in %s/vips (Read-only" % ro), res
        assert addrs(ns) == start
        # IPv4 only: no state file to write, so nothing stops the run.
        assert vip(ns, tmp_path, addresses=["192.0.2.10"], state_path=str(ro / "vips" / "d0.json"))["added"]
    finally:
        subprocess.run(["umount", str(ro)], check=False, timeout=30)


def test_lo_gets_scope_host_and_ipv6(netns, tmp_path):
    name = netns()
    res = run_module("lvs_vip", {"interface": "lo", "namespace": name, "addresses": ["192.0.2.10", "2001:db8::10"],
                                 "state_path": str(tmp_path / "lo.json"), "state": "exact"})
    assert res["changed"] and res["label"] == "lo:lvs", res
    now = addrs(name, "lo")
    assert now["192.0.2.10/32"] == ("lo:lvs", "host", ())
    assert now["2001:db8::10/128"][2] == ("nodad", "deprecated")
    assert now["127.0.0.1/8"] == ("lo", "host", ())
    gone = run_module("lvs_vip", {"interface": "lo", "namespace": name, "state": "absent", "state_path": str(tmp_path / "lo.json")})
    assert gone["removed"] == ["192.0.2.10/32", "2001:db8::10/128"]
    assert set(addrs(name, "lo")) == {"127.0.0.1/8", "::1/128"}


def test_tunl0_after_ipip_is_loaded(netns, tmp_path):
    subprocess.run(["modprobe", "ipip"], check=True, timeout=30)
    subprocess.run(["modprobe", "ip6_tunnel"], check=True, timeout=30)
    name = netns()
    args = {"interface": "tunl0", "namespace": name, "addresses": ["192.0.2.10"], "scope": "host",
            "state_path": str(tmp_path / "tunl0.json")}
    res = run_module("lvs_vip", args)
    assert res["changed"] and res["label"] == "tunl0:lvs", res
    assert "interface: tunl0 is down" in str(res["warnings"])
    assert addrs(name, "tunl0")["192.0.2.10/32"] == ("tunl0:lvs", "host", ())
    assert run_module("lvs_vip", args)["changed"] is False
    six = run_module("lvs_vip", {"interface": "ip6tnl0", "namespace": name, "addresses": ["2001:db8::10"],
                                 "state_path": str(tmp_path / "ip6tnl0.json"), "state": "exact"})
    assert six["added"] == ["2001:db8::10/128"] and six["label"] == "ip6tnl0:lvs", six
    assert "2001:db8::10/128" in addrs(name, "ip6tnl0")


def link_is_up(ns, dev):
    return "UP" in json.loads(ip(ns, "-j", "link", "show", "dev", dev).stdout)[0]["flags"]


def test_link_up_sets_a_down_tunnel_up_after_its_addresses(netns, tmp_path):
    # ipip creates tunl0 down in every namespace; a TUN real server's VIPs answer only once it is up.
    subprocess.run(["modprobe", "ipip"], check=True, timeout=30)
    name = netns()
    args = {"interface": "tunl0", "namespace": name, "addresses": ["192.0.2.10"], "scope": "host",
            "state": "exact", "link_up": True, "state_path": str(tmp_path / "tunl0.json")}
    assert not link_is_up(name, "tunl0")
    check = run_module("lvs_vip", args, check=True)
    assert check["changed"] and check["link_set_up"] is True, check
    assert check["commands"][-1] == "ip link set dev tunl0 up", check["commands"]
    assert not link_is_up(name, "tunl0") and "192.0.2.10/32" not in addrs(name, "tunl0"), "check mode changed the device"
    res = run_module("lvs_vip", args)
    assert res["changed"] and res["link_set_up"] is True and res["commands"] == check["commands"], res
    assert "is down" not in str(res.get("warnings")), res
    assert link_is_up(name, "tunl0") and addrs(name, "tunl0")["192.0.2.10/32"] == ("tunl0:lvs", "host", ())
    again = run_module("lvs_vip", args)
    assert again["changed"] is False and again["link_set_up"] is False and again["commands"] == [], again
    # state=absent leaves the device as it is (up), whatever link_up says.
    gone = run_module("lvs_vip", dict(args, state="absent", addresses=None))
    assert gone["removed"] == ["192.0.2.10/32"] and gone["link_set_up"] is False and link_is_up(name, "tunl0")


def test_a_tunnel_device_that_does_not_exist_yet_is_named(netns, tmp_path):
    name = netns()
    res = run_module("lvs_vip", {"interface": "sit0", "namespace": name, "addresses": ["192.0.2.10"],
                                 "state_path": str(tmp_path / "x.json")}, check=True)
    assert res.get("failed") and "interface: no device sit0 here (sit0 appears when its kernel module is loaded: modprobe sit)" in res["msg"]
    assert not os.path.exists("/sys/module/sit"), "check mode loaded a module"


def neigh(ns, dev, address):
    out = json.loads(ip(ns, "-j", "neigh", "show", "dev", dev, "to", address).stdout)
    return out[0].get("lladdr") if out else None


def test_announce_updates_the_neighbours_cache(netns, tmp_path):
    director, peer = netns(), netns()
    ip(director, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", peer)
    for ns, dev, a4, a6 in ((director, "v0", "192.0.2.1/24", "2001:db8::1/64"), (peer, "v1", "192.0.2.2/24", "2001:db8::2/64")):
        ip(ns, "link", "set", dev, "up")
        ip(ns, "address", "add", a4, "dev", dev)
        ip(ns, "address", "add", a6, "dev", dev, "nodad")
    mac = json.loads(ip(director, "-j", "link", "show", "dev", "v0").stdout)[0]["address"]
    old = "02:00:00:00:00:99"  # the host that held the VIPs before
    for vip_ in ("192.0.2.10", "2001:db8::10"):
        ip(peer, "neigh", "replace", vip_, "lladdr", old, "dev", "v1", "nud", "stale")
    args = {"interface": "v0", "namespace": director, "addresses": ["192.0.2.10", "2001:db8::10"], "announce": True,
            "state_path": str(tmp_path / "v0.json")}
    checked = run_module("lvs_vip", args, check=True)
    assert checked["announced"] == ["192.0.2.10/32", "2001:db8::10/128"]
    assert neigh(peer, "v1", "192.0.2.10") == old
    done = run_module("lvs_vip", args)
    assert done["announced"] == checked["announced"] and not done.get("warnings"), done
    assert neigh(peer, "v1", "192.0.2.10") == mac
    assert neigh(peer, "v1", "2001:db8::10") == mac
    assert run_module("lvs_vip", args)["announced"] == []
    # Not on a device without ARP.
    ip(director, "link", "add", "d0", "type", "dummy")
    quiet = run_module("lvs_vip", dict(args, interface="d0", state_path=str(tmp_path / "d0.json")))
    assert quiet["added"] and quiet["announced"] == []
