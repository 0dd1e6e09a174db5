"""lvs_vip without a kernel: validation, ownership, planning, commands, state file, rollback, the module's errors."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.collection import ensure_importable

ensure_importable()

from ansible_collections.lvs.ipvs.plugins.module_utils import _vip as V  # noqa: E402
from tests.unit.plugins.modules.test_fuzz_inputs import HOSTILE, NO_NS, _mutate, run_inprocess  # noqa: E402

LABEL = "eth0:lvs"


def v4(address, label=LABEL, scope=0, prefixlen=32):
    return {"address": address, "prefixlen": prefixlen, "family": 4, "label": label, "scope": scope}


def v6(address, deprecated=True, prefixlen=128):
    return {"address": address, "prefixlen": prefixlen, "family": 6, "deprecated": deprecated}


HOST = [v4("192.0.2.1", label="eth0", prefixlen=24), v6("2001:db8::1", deprecated=False, prefixlen=64)]


# -- validation ------------------------------------------------------------------

@pytest.mark.parametrize("raw, canon", [
    ("192.0.2.10", "192.0.2.10/32"), ("192.0.2.10/32", "192.0.2.10/32"), (" 192.0.2.10 ", "192.0.2.10/32"),
    ("2001:DB8:0:0::10", "2001:db8::10/128"), ("2001:0db8::0010/128", "2001:db8::10/128"),
    ("198.51.100.255", "198.51.100.255/32"), ("169.254.1.1", "169.254.1.1/32"),
])
def test_addresses_are_normalised(raw, canon):
    assert V.text(V.parse_address(raw, "addresses[0]")) == canon


@pytest.mark.parametrize("raw, msg", [
    ("192.0.2.0/24", "a VIP is a single address, /32 or no prefix length"),
    ("2001:db8::/64", "a VIP is a single address, /128 or no prefix length"),
    ("192.0.2.10/128", "/32 or no prefix length"),
    ("192.0.2.10/", "a VIP is a single address, /32 or no prefix length"),
    ("192.0.2.256", "is not an IPv4 or IPv6 address"),
    ("vip.example.com", "is not an IPv4 or IPv6 address"),
    ("", "is not an IPv4 or IPv6 address"),
    ("fe80::1%eth0", "no zone index"),
    ("0.0.0.0", "not usable as a VIP"), ("::", "not usable as a VIP"), ("224.0.0.1", "not usable as a VIP"),
    ("127.0.0.2", "not usable as a VIP"), ("::1", "not usable as a VIP"), ("fe80::1", "link-local"),
    ("::ffff:192.0.2.1", "IPv4-mapped"), (10, "is not an address"), (None, "is not an address"),
    (["192.0.2.1"], "is not an address"),
])
def test_bad_addresses_name_their_index(raw, msg):
    with pytest.raises(V.VipError, match=msg) as exc:
        V.validate_addresses(["192.0.2.99", raw])
    assert exc.value.field == "addresses[1]" and str(exc.value).startswith("addresses[1]: ")


def test_duplicates_after_normalisation_are_refused():
    with pytest.raises(V.VipError, match=r"addresses\[2\]: 2001:db8::10 is the same address as addresses\[0\]"):
        V.validate_addresses(["2001:db8::10", "192.0.2.1", "2001:DB8::0:10/128"])
    with pytest.raises(V.VipError, match="addresses: must be a list"):
        V.validate_addresses("192.0.2.1")
    assert V.validate_addresses(None) == []
    assert [v["index"] for v in V.validate_addresses(["192.0.2.2", "192.0.2.1"])] == [0, 1]


@pytest.mark.parametrize("name", ["", "a" * 16, "eth0:1", "a b", "a/b", ".", "..", None, 3, "eth\n0"])
def test_bad_interfaces(name):
    with pytest.raises(V.VipError) as exc:
        V.validate_interface(name)
    assert exc.value.field == "interface"


def test_good_interfaces():
    for name in ("eth0", "lo", "tunl0", "ip6tnl0", "a" * 15, "eth0.100", "br-lan"):
        assert V.validate_interface(name) == name


def test_label_is_derived_or_checked():
    assert V.validate_label(None, "eth0", True) == "eth0:lvs"
    assert V.validate_label(None, "enp0s31f6abc", False) is None  # 16 characters with :lvs, no IPv4 listed
    with pytest.raises(V.VipError, match="label: the default label enp0s31f6abc:lvs has 16 characters"):
        V.validate_label(None, "enp0s31f6abc", True)
    assert V.validate_label("enp0s31f6abc:v", "enp0s31f6abc", True) == "enp0s31f6abc:v"
    for bad, msg in (("eth1:lvs", "must be the interface name, a colon and a tag"), ("eth0", "bare interface name"),
                     ("eth0:", "must be the interface name"), ("eth0lvs", "must be the interface name"),
                     ("eth0:abcdefghijk", "has 16 characters"), ("eth0:a b", "no spaces"), ("eth0:a:b", "no spaces"),
                     (5, "must be a string")):
        with pytest.raises(V.VipError, match=msg) as exc:
            V.validate_label(bad, "eth0", True)
        assert exc.value.field == "label"


def test_default_state_path_per_namespace():
    assert V.default_state_path("eth0", None) == "/var/lib/lvs.ipvs/vips/eth0.json"
    assert V.default_state_path("lo", "lb1") == "/var/lib/lvs.ipvs/vips/netns-lb1/lo.json"
    assert V.default_state_path("lo", "/proc/1/ns/net") == "/var/lib/lvs.ipvs/vips/netns-%2Fproc%2F1%2Fns%2Fnet/lo.json"


# -- state file --------------------------------------------------------------------

def test_state_file_round_trip_and_foreign_files():
    content = V.render_state("eth0", None, ["2001:db8::10/128", "2001:db8::2/128"])
    assert json.loads(content)["ipv6"] == ["2001:db8::2/128", "2001:db8::10/128"]
    assert V.parse_state(content, "/x") == {"2001:db8::2/128", "2001:db8::10/128"}
    assert V.parse_state(None, "/x") == set()
    for bad in ("", "{", "[]", '{"ipv6": []}', '{"owner": "lvs.ipvs.lvs_vip", "ipv6": "2001:db8::1"}',
                '{"owner": "lvs.ipvs.lvs_vip", "ipv6": ["nonsense"]}', '{"owner": "lvs.ipvs.lvs_vip", "ipv6": [1]}'):
        with pytest.raises(V.VipError, match="state_path: /x is not a state file of lvs.ipvs.lvs_vip"):
            V.parse_state(bad, "/x")


def test_state_file_is_written_atomically_and_locked(tmp_path):
    path = str(tmp_path / "d" / "eth0.json")
    V.prepare_state_dir(path)
    V.write_state(path, V.render_state("eth0", None, ["2001:db8::1/128"]))
    assert V.parse_state(V.read_state(path), path) == {"2001:db8::1/128"}
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["eth0.json"]
    fd = V.lock(path, lock_dir=str(tmp_path / "lock"))
    try:
        with pytest.raises(V.VipError, match="state_path: another run holds .* nothing was changed"):
            V.lock(path, timeout=0.3, lock_dir=str(tmp_path / "lock"))
    finally:
        import os
        os.close(fd)
    V.remove_state(path)
    V.remove_state(path)
    assert V.read_state(path) is None


# -- ownership and planning ----------------------------------------------------------

def test_owned_by_label_and_record():
    have = HOST + [v4("192.0.2.10"), v4("192.0.2.11", label="eth0:ka"), v6("2001:db8::10"), v6("2001:db8::11")]
    mine = V.owned(have, LABEL, {"2001:db8::10/128", "2001:db8::99/128"})
    assert [V.text(a) for a in mine] == ["192.0.2.10/32", "2001:db8::10/128"]
    assert [V.text(a) for a in V.owned(have, None, set())] == []


def want(*addresses):
    return V.validate_addresses(list(addresses))


def test_present_adds_missing_and_keeps_everything_else():
    have = HOST + [v4("192.0.2.10"), v6("2001:db8::10")]
    res = V.plan(want("2001:db8::11", "192.0.2.11"), have, "present", LABEL, {"2001:db8::10/128"})
    assert [(o["op"], V.text(o), o["field"]) for o in res["ops"]] == [
        ("add", "192.0.2.11/32", "addresses[1]"), ("add", "2001:db8::11/128", "addresses[0]")]
    assert [V.text(a) for a in res["owned_after"]] == ["192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128",
                                                       "2001:db8::11/128"]
    assert res["records"] == ["2001:db8::10/128", "2001:db8::11/128"]


def test_exact_removes_owned_only_and_adds_before_it_removes():
    have = HOST + [v4("192.0.2.10"), v4("198.51.100.9", label="eth0"), v6("2001:db8::10"), v6("2001:db8::99")]
    res = V.plan(want("192.0.2.11", "2001:db8::11"), have, "exact", LABEL, {"2001:db8::10/128"})
    assert [(o["op"], V.text(o)) for o in res["ops"]] == [
        ("add", "192.0.2.11/32"), ("add", "2001:db8::11/128"), ("del", "192.0.2.10/32"), ("del", "2001:db8::10/128")]
    assert V.commands(res["ops"], "eth0") == [
        "ip address add 192.0.2.11/32 dev eth0 label eth0:lvs scope global",
        "ip address add 2001:db8::11/128 dev eth0 nodad preferred_lft 0",
        "ip address del 192.0.2.10/32 dev eth0", "ip address del 2001:db8::10/128 dev eth0"]
    assert res["records"] == ["2001:db8::11/128"]


def test_listed_but_not_owned_is_reported_and_left():
    have = HOST + [v4("198.51.100.9", label="eth0"), v6("2001:db8::99")]
    for state in ("present", "exact", "absent"):
        res = V.plan(want("198.51.100.9", "2001:db8::99", "192.0.2.1"), have, state, LABEL, set())
        assert res["ops"] == [], state
        assert [(V.text(a), a["field"]) for a in res["not_owned"]] == [
            ("192.0.2.1/24", "addresses[2]"), ("198.51.100.9/32", "addresses[0]"), ("2001:db8::99/128", "addresses[1]")]


def test_absent_listed_or_everything_owned():
    have = HOST + [v4("192.0.2.10"), v4("192.0.2.11"), v6("2001:db8::10")]
    records = {"2001:db8::10/128"}
    part = V.plan(want("192.0.2.11", "192.0.2.99"), have, "absent", LABEL, records)
    assert [V.text(o) for o in part["ops"]] == ["192.0.2.11/32"] and part["records"] == ["2001:db8::10/128"]
    everything = V.plan([], have, "absent", LABEL, records, listed=False)
    assert [(o["op"], V.text(o)) for o in everything["ops"]] == [
        ("del", "192.0.2.10/32"), ("del", "192.0.2.11/32"), ("del", "2001:db8::10/128")]
    assert everything["owned_after"] == [] and everything["records"] == []
    assert V.plan([], have, "absent", LABEL, records, listed=True)["ops"] == []


def test_in_place_change_and_replacement():
    have = HOST + [v4("192.0.2.10", scope=0), v6("2001:db8::10", deprecated=True)]
    res = V.plan(want("192.0.2.10", "2001:db8::10"), have, "present", LABEL, {"2001:db8::10/128"}, scope=254,
                 deprecated=False)
    assert [o["op"] for o in res["ops"]] == ["change", "replace"]
    assert V.commands(res["ops"], "lo") == [
        "ip address change 2001:db8::10/128 dev lo nodad preferred_lft forever",
        "ip address del 192.0.2.10/32 dev lo", "ip address add 192.0.2.10/32 dev lo label eth0:lvs scope host"]
    assert [V.text(a) for a in res["owned_after"]] == ["192.0.2.10/32", "2001:db8::10/128"]
    assert res["owned_after"][0]["scope"] == 254 and res["owned_after"][1]["deprecated"] is False


def test_stale_records_are_dropped():
    res = V.plan(want("2001:db8::10"), HOST, "present", LABEL, {"2001:db8::10/128", "2001:db8::77/128"})
    assert [V.text(o) for o in res["ops"]] == ["2001:db8::10/128"] and res["records"] == ["2001:db8::10/128"]


def test_unknown_state_names_state():
    with pytest.raises(V.VipError, match="state: 'merged' is not one of"):
        V.plan([], [], "merged", LABEL, set())


# -- a simulated kernel: plan applied to have gives what was asked ----------------------

class FakeRtnl:
    """Addresses of one device, as the kernel keeps them; ``fail_at``: the op number that is refused."""

    def __init__(self, have, fail_at=None, fail_undo=False):
        self.addrs = {a["address"]: dict(a) for a in have}
        self.count = 0
        self.fail_at = fail_at
        self.fail_undo = fail_undo
        self.log = []

    def apply(self, index, op):
        self.count += 1
        if self.count == self.fail_at or (self.fail_undo and self.fail_at and self.count > self.fail_at):
            raise V.VipError(op["field"], "the kernel refused `%s`: Permission denied" % V.commands([op], "eth0")[-1])
        self.log.append(V.commands([op], "eth0"))
        plain = {k: v for k, v in op.items() if k not in ("op", "field", "old")}
        if op["op"] == "add":
            assert op["address"] not in self.addrs
            self.addrs[op["address"]] = plain
        elif op["op"] == "del":
            del self.addrs[op["address"]]
        elif op["op"] == "change":
            assert op["address"] in self.addrs
            self.addrs[op["address"]] = plain
        else:
            del self.addrs[op["old"]["address"]]
            self.addrs[op["address"]] = plain

    def have(self):
        return sorted(self.addrs.values(), key=V.sort_key)


POOL4 = ["192.0.2.%d" % i for i in range(10, 16)]
POOL6 = ["2001:db8::%x" % i for i in range(16, 22)]


@st.composite
def scenarios(draw):
    pool = POOL4 + POOL6
    have = list(HOST)
    records = set()
    for addr in draw(st.lists(st.sampled_from(pool), unique=True, max_size=8)):
        if ":" in addr:
            have.append(v6(addr, deprecated=draw(st.booleans())))
            if draw(st.booleans()):
                records.add(addr + "/128")
        else:
            have.append(v4(addr, label=draw(st.sampled_from([LABEL, "eth0", "eth0:ka"])), scope=draw(st.sampled_from([0, 254]))))
    records |= {a + "/128" for a in draw(st.lists(st.sampled_from(POOL6), max_size=2))}  # stale records too
    wanted = draw(st.lists(st.sampled_from(pool), unique=True, max_size=6))
    state = draw(st.sampled_from(["present", "exact", "absent"]))
    listed = state != "absent" or draw(st.booleans())
    return have, records, wanted if listed else [], state, listed, draw(st.sampled_from([0, 254])), draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_plan_applied_gives_what_the_state_asks_and_touches_nothing_else(scenario):
    have, records, wanted, state, listed, scope, deprecated = scenario
    res = V.plan(want(*wanted), have, state, LABEL, records, scope=scope, deprecated=deprecated, listed=listed)
    kernel = FakeRtnl(have)
    assert V.apply_ops(kernel, 1, res["ops"]) == len(res["ops"])
    after = kernel.have()
    mine_before = {a["address"] for a in V.owned(have, LABEL, records)}
    foreign_before = sorted((a for a in have if a["address"] not in mine_before), key=V.sort_key)
    # What it does not own is exactly as it was.
    assert [a for a in after if a["address"] not in mine_before and a["address"] not in {o["address"] for o in res["ops"]}] \
        == foreign_before
    # The prediction is what the kernel holds, and a second plan (with the new records) has nothing to do.
    new_records = set(res["records"])
    assert V.owned(after, LABEL, new_records) == res["owned_after"]
    again = V.plan(want(*wanted), after, state, LABEL, new_records, scope=scope, deprecated=deprecated, listed=listed)
    assert again["ops"] == [] and again["owned_after"] == res["owned_after"]
    owned_after = {a["address"] for a in res["owned_after"]}
    on_iface = {a["address"] for a in after}
    if state in ("present", "exact"):
        assert set(wanted) <= on_iface
        for a in (a for a in res["owned_after"] if a["address"] in wanted):
            assert (a.get("scope") == scope) if a["family"] == 4 else (a["deprecated"] == deprecated)
    if state == "exact":
        assert owned_after <= set(wanted)
    if state == "absent":
        assert not owned_after & (set(wanted) if listed else on_iface)
    # Undone, everything is back as it was.
    V.undo(kernel, 1, res["ops"])
    assert kernel.have() == sorted(have, key=V.sort_key)


def test_a_refused_op_undoes_the_earlier_ones_and_says_so():
    have = list(HOST)
    res = V.plan(want("192.0.2.10", "2001:db8::10", "192.0.2.11"), have, "present", LABEL, set())
    kernel = FakeRtnl(have, fail_at=3)
    with pytest.raises(V.VipError) as exc:
        V.apply_ops(kernel, 1, res["ops"])
    assert exc.value.field == "addresses[1]"
    assert str(exc.value) == ("addresses[1]: the kernel refused `ip address add 2001:db8::10/128 dev eth0 nodad preferred_lft 0`: "
                              "Permission denied; the 2 earlier change(s) of this task were undone")
    assert kernel.have() == sorted(have, key=V.sort_key)
    first = FakeRtnl(have, fail_at=1)
    with pytest.raises(V.VipError, match="Permission denied; nothing was changed$"):
        V.apply_ops(first, 1, res["ops"])
    broken = FakeRtnl(have, fail_at=2, fail_undo=True)
    with pytest.raises(V.VipError, match="ROLLBACK INCOMPLETE: undoing the 1 earlier change"):
        V.apply_ops(broken, 1, res["ops"])


def test_announcement_packets():
    arp = V.arp_frame("02:00:00:00:00:01", "192.0.2.10", reply=False)
    assert arp.hex() == ("ffffffffffff" "020000000001" "0806" "0001" "0800" "06" "04" "0001"
                         "020000000001" "c000020a" "000000000000" "c000020a")
    assert V.arp_frame("02:00:00:00:00:01", "192.0.2.10", reply=True).hex()[40:44] == "0002"
    na = V.na_message("02:00:00:00:00:01", "2001:db8::10")
    assert na.hex() == ("88" "00" "0000" "20000000" "20010db8000000000000000000000010" "02" "01" "020000000001")


# -- the module, in process (check mode, a namespace that does not exist) ----------------

BASE = {"interface": "eth0", "addresses": ["192.0.2.10", "2001:db8::10"], "state": "exact", "state_path": "/nonexistent/x.json"}


@pytest.mark.parametrize("args, msg", [
    ({"addresses": ["192.0.2.10", "192.0.2.0/24"]}, "addresses[1]: '192.0.2.0/24': a VIP is a single address"),
    ({"addresses": "192.0.2.10"}, None),  # Ansible turns a string into a one-element list
    ({"addresses": [{"a": 1}]}, "addresses[0]"),
    ({"label": "eth1:x"}, "label: 'eth1:x' must be the interface name"),
    ({"interface": "eth0:1"}, "interface: 'eth0:1' is not a device name"),
    ({"state": "merged"}, "state"),
    ({"scope": "link"}, "scope"),
    ({"namespace": "../x"}, "namespace: '../x' is not a namespace name"),
    ({"addresses": None}, "addresses: is required with state=exact"),
])
def test_module_errors_name_the_field(args, msg):
    full = dict(BASE, namespace=NO_NS)
    full.update(args)
    result, trace = run_inprocess("lvs_vip", full)
    assert trace is None, trace
    assert result.get("failed"), result
    assert (msg or "namespace: network namespace %r not found" % NO_NS) in result["msg"], result


def test_valid_input_gets_as_far_as_the_namespace():
    result, trace = run_inprocess("lvs_vip", dict(BASE, namespace=NO_NS))
    assert trace is None and result["msg"].startswith("namespace: network namespace %r not found" % NO_NS), result


def test_module_fuzz_never_tracebacks_and_names_the_field():
    rng = random.Random("lvs_vip-20261203")
    names = ("interface", "addresses", "state", "label", "scope", "ipv6_deprecated", "state_path", "namespace")
    problems = []
    for _trial in range(150):
        args = dict(BASE, label="eth0:lvs", scope="global", ipv6_deprecated=True)
        key = rng.choice(sorted(args))
        args[key] = _mutate(rng, args[key]) if rng.random() < 0.7 else rng.choice(HOSTILE)
        args["namespace"] = NO_NS
        result, trace = run_inprocess("lvs_vip", args)
        if result is not None and result.get("skipped"):
            continue
        if trace:
            problems.append("TRACEBACK %r: %s" % (args, trace[-800:]))
        elif "Failed to log to syslog (embedded null character)" in str(result.get("msg")):
            continue  # AnsibleModule's own refusal of a NUL in any option, before the module runs
        elif result.get("failed") and not any(n in str(result.get("msg")) for n in names):
            problems.append("no field named for %r: %s" % (args, result.get("msg")))
    assert not problems, "\n\n".join(problems[:5])
