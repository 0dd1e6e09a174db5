"""Pure logic of module_utils/_sysctl.py: names, values, drop-in files, planning, validation."""

from __future__ import annotations

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils import _sysctl as S


@pytest.mark.parametrize("raw, key", [
    ("net.ipv4.ip_forward", "net.ipv4.ip_forward"),
    ("net/ipv4/ip_forward", "net.ipv4.ip_forward"),
    (" net.ipv4.conf.all.rp_filter ", "net.ipv4.conf.all.rp_filter"),
    ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
    ("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter"),
])
def test_normalize_key(raw, key):
    assert S.normalize_key(raw) == key


@pytest.mark.parametrize("raw", ["", "net..ipv4", ".net", "net.ipv4.", "net ipv4", "a;b", "net/ipv4/"])
def test_bad_keys_are_refused_naming_them(raw):
    with pytest.raises(S.SysctlError, match="is not a kernel parameter name"):
        S.normalize_key(raw)


def test_key_path_maps_slashes_in_components_to_dots():
    assert S.key_path("net.ipv4.conf.eth0/100.rp_filter", "/p") == "/p/net/ipv4/conf/eth0.100/rp_filter"


def test_interface_of():
    assert S.interface_of("net.ipv4.conf.tunl0.rp_filter") == ("tunl0", "net.ipv4.conf.default.rp_filter")
    assert S.interface_of("net.ipv4.conf.eth0/100.arp_ignore") == ("eth0.100", "net.ipv4.conf.default.arp_ignore")
    assert S.interface_of("net.ipv4.conf.all.rp_filter") is None
    assert S.interface_of("net.ipv4.ip_forward") is None


@pytest.mark.parametrize("raw, text", [(True, "1"), (False, "0"), (1, "1"), ("  2 ", "2"), ("4096\t87380  6291456", "4096 87380 6291456"),
                                       ([4096, 87380, 6291456], "4096 87380 6291456"), ("bbr", "bbr")])
def test_normalize_value(raw, text):
    assert S.normalize_value(raw, "k") == text


@pytest.mark.parametrize("raw", [None, "", "   ", 1.5])
def test_bad_values(raw):
    with pytest.raises(S.SysctlError):
        S.normalize_value(raw, "k")


@pytest.mark.parametrize("key, value, msg", [
    ("net.ipv4.ip_forward", "2", "2 is out of range 0..1"),
    ("net.ipv4.conf.all.arp_announce", "3", "3 is out of range 0..2"),
    ("net.ipv4.conf.eth0.arp_ignore", "9", "9 is out of range 0..8"),
    ("net.ipv4.conf.all.rp_filter", "loose", "'loose' is not an integer"),
    ("net.ipv4.vs.conn_reuse_mode", "3", "out of range 0..2"),
    ("net.ipv4.vs.conntrack", "-1", "out of range 0..1"),
])
def test_known_ranges(key, value, msg):
    with pytest.raises(S.SysctlError, match=msg) as exc:
        S.check_value(key, value, "0")
    assert exc.value.key == key


def test_unknown_parameters_are_checked_against_the_current_shape():
    S.check_value("net.ipv4.tcp_rmem", "4096 87380 6291456", "4096 131072 6291456")
    with pytest.raises(S.SysctlError, match="the kernel expects 3"):
        S.check_value("net.ipv4.tcp_rmem", "4096", "4096 131072 6291456")
    with pytest.raises(S.SysctlError, match="not numeric"):
        S.check_value("net.core.somaxconn", "many", "4096")
    S.check_value("net.ipv4.tcp_congestion_control", "bbr", "cubic")


def test_render_and_parse_round_trip():
    values = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.send_redirects": "0"}
    text = S.render(values)
    assert text.startswith("# Managed by Ansible")
    assert text.splitlines()[2:] == ["net.ipv4.conf.all.send_redirects = 0", "net.ipv4.ip_forward = 1"]
    assert S.parse(text) == values
    assert S.parse("; c\n-net/ipv4/ip_forward=1\n\n") == {"net.ipv4.ip_forward": "1"}


def test_plan_lists_only_differences_and_leaves_absent_interfaces_to_the_file():
    want = {"a.b": "1", "c.d": "0", "net.ipv4.conf.tunl0.rp_filter": "0"}
    running = {"a.b": "1", "c.d": "1", "net.ipv4.conf.tunl0.rp_filter": None}
    assert S.plan(want, running) == [{"key": "c.d", "before": "1", "after": "0"}]


def _fake(tree):
    return tree.__contains__, tree.get


def test_validate_accepts_and_reports_running_values():
    exists, read = _fake({"net.ipv4.ip_forward": "0", "net.ipv4.conf.default.rp_filter": "1"})
    values, running, warnings = S.validate({"net/ipv4/ip_forward": True, "net.ipv4.conf.tunl0.rp_filter": 0}, exists, read)
    assert values == {"net.ipv4.ip_forward": "1", "net.ipv4.conf.tunl0.rp_filter": "0"}
    assert running == {"net.ipv4.ip_forward": "0", "net.ipv4.conf.tunl0.rp_filter": None}
    assert warnings == ["net.ipv4.conf.tunl0.rp_filter: interface tunl0 does not exist (yet): the value is "
                        "persisted and applied when it appears"]


@pytest.mark.parametrize("raw, msg", [
    ({}, "sysctls: must be a non-empty dictionary"),
    ({"net.ipv4.ip_fwd": 1}, "net.ipv4.ip_fwd: unknown kernel parameter"),
    ({"net.ipv4.conf.tunl0.rp_filtr": 0}, "net.ipv4.conf.tunl0.rp_filtr: unknown kernel parameter"),
    ({"net.ipv4.ip_forward": 1, "net/ipv4/ip_forward": 1}, "net.ipv4.ip_forward: is given twice"),
    ({"net.ipv4.ip_forward": 7}, "net.ipv4.ip_forward: 7 is out of range 0..1"),
    ({"net.ipv4.conf.tunl0.rp_filter": 5}, "net.ipv4.conf.tunl0.rp_filter: 5 is out of range 0..2"),
])
def test_validate_refuses_naming_the_key(raw, msg):
    exists, read = _fake({"net.ipv4.ip_forward": "0", "net.ipv4.conf.default.rp_filter": "1"})
    with pytest.raises(S.SysctlError) as exc:
        S.validate(raw, exists, read)
    assert str(exc.value).startswith(msg)


def test_apply_puts_back_what_it_wrote_when_the_kernel_refuses(tmp_path):
    for key, value in (("a/x", "0"), ("a/y", "0")):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_text(value + "\n")
    (tmp_path / "a" / "refused").mkdir()  # writing a directory fails like a refused value
    changes = [{"key": "a.x", "before": "0", "after": "1"}, {"key": "a.refused", "before": "0", "after": "1"}]
    with pytest.raises(S.SysctlError, match="a.refused: the kernel refused"):
        S.apply(changes, root=str(tmp_path))
    assert (tmp_path / "a" / "x").read_text() == "0\n"
    S.apply([{"key": "a.y", "before": "0", "after": "2"}], root=str(tmp_path))
    assert S.read_value("a.y", root=str(tmp_path)) == "2"
