"""Planner: minimal ordered ops, edits in place, ownership, and plan∘apply properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    IPVSValidationError,
    normalize_table,
    real_server_key,
    service_config,
    service_key,
)
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import (
    PlanError,
    apply_ops,
    inverse_ops,
    ownership,
    plan,
    plan_real_server,
    split_drain,
)


def table(*services):
    return normalize_table(list(services))


WEB = {"address": "10.0.0.1", "port": 80, "scheduler": "rr",
       "real_servers": [{"address": "10.0.1.1", "forwarding": "nat"}, {"address": "10.0.1.2", "forwarding": "nat"}]}
DNS = {"protocol": "udp", "address": "10.0.0.1", "port": 53, "real_servers": [{"address": "10.0.1.1"}]}


def actions(ops):
    return [op["action"] for op in ops]


def test_nothing_to_do_when_table_matches():
    have = table(WEB, DNS)
    for state in ("merged", "replaced", "overridden"):
        assert plan(have, have, state) == []


def test_weight_change_is_one_set_op():
    have = table(WEB)
    want = table(dict(WEB, real_servers=[{"address": "10.0.1.1", "forwarding": "nat", "weight": 5}]))
    ops = plan(want, have, "merged")
    assert actions(ops) == ["set_real_server"]
    assert ops[0]["real_server"]["weight"] == 5 and ops[0]["before"]["weight"] == 1


def test_scheduler_change_edits_service_in_place():
    have = table(WEB)
    want = table(dict(WEB, scheduler="wlc", persistence_timeout=300))
    assert actions(plan(want, have, "merged")) == ["set_service"]


def test_service_without_real_servers_leaves_them_alone():
    have = table(WEB)
    want = table({"address": "10.0.0.1", "port": 80, "scheduler": "rr"})
    for state in ("merged",):
        assert plan(want, have, state) == []


def test_replaced_removes_unlisted_real_servers_after_adding_new_ones():
    have = table(WEB)
    want = table(dict(WEB, real_servers=[{"address": "10.0.1.3", "forwarding": "nat"}]))
    ops = plan(want, have, "replaced")
    assert actions(ops) == ["add_real_server", "del_real_server", "del_real_server"]


def test_merged_never_removes():
    have = table(WEB, DNS)
    want = table(dict(WEB, real_servers=[{"address": "10.0.1.3", "forwarding": "nat"}]))
    assert actions(plan(want, have, "merged")) == ["add_real_server"]


def test_overridden_removes_only_owned_services():
    have = table(WEB, DNS)

    def owns_tcp(svc):
        return svc["protocol"] == "tcp"

    assert plan(table(WEB), have, "overridden", owns_tcp) == []
    ops = plan([], have, "overridden", owns_tcp)
    assert actions(ops) == ["del_service"] and ops[0]["service"]["port"] == 80


def test_deleted_by_key_and_all():
    have = table(WEB, DNS)
    ops = plan(table({"protocol": "udp", "address": "10.0.0.1", "port": 53}), have, "deleted")
    assert [op["service"]["port"] for op in ops] == [53]
    assert len(plan([], have, "deleted")) == 2
    assert plan(table({"address": "10.9.9.9", "port": 1}), have, "deleted") == []


def test_deleted_refuses_unowned_service():
    with pytest.raises(PlanError, match="tcp 10.0.0.1:80: is outside what this task owns"):
        plan(table(WEB), table(WEB), "deleted", lambda svc: False)


def test_deleted_with_no_list_removes_the_owned_services_only():
    # director_state: absent next to keepalived's (or an operator's) services.
    ops = plan([], table(WEB, DNS), "deleted", lambda svc: svc["protocol"] == "udp")
    assert [(op["action"], op["service"]["port"]) for op in ops] == [("del_service", 53)]


def test_make_before_break_order():
    have = table(WEB)
    want = table({"address": "10.0.0.2", "port": 80, "real_servers": [{"address": "10.0.1.5"}]},
                 dict(WEB, scheduler="lc", real_servers=[{"address": "10.0.1.1", "forwarding": "nat", "weight": 2}]))
    ops = plan(want, have, "overridden")
    assert actions(ops) == ["add_service", "set_service", "add_real_server", "set_real_server", "del_real_server"]


def test_plan_real_server_present_and_absent():
    svc = table(WEB)[0]
    want = normalize_table([dict(WEB, real_servers=[{"address": "10.0.1.2", "forwarding": "dr"}])])[0]["real_servers"][0]
    assert actions(plan_real_server(svc, want)) == ["set_real_server"]
    assert actions(plan_real_server(svc, want, "absent")) == ["del_real_server"]
    same = svc["real_servers"][0]
    assert plan_real_server(svc, same) == []


def test_apply_ops_rejects_impossible_ops():
    with pytest.raises(PlanError, match="does not exist"):
        apply_ops([], [{"action": "del_service", "service": service_config(table(WEB)[0])}])


# ---- properties: for any want and have, applying the plan to have yields the requested table

ADDRS = ["10.0.0.1", "10.0.0.2", "2001:db8::1"]
RS_ADDRS = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "2001:db8::a", "2001:db8::b"]


@st.composite
def services(draw):
    kind = draw(st.sampled_from(["addr", "fwmark"]))
    if kind == "fwmark":
        svc = {"fwmark": draw(st.integers(1, 3)), "family": draw(st.sampled_from(["ipv4", "ipv6"]))}
    else:
        svc = {"protocol": draw(st.sampled_from(["tcp", "udp"])), "address": draw(st.sampled_from(ADDRS)),
               "port": draw(st.sampled_from([80, 443]))}
    svc["scheduler"] = draw(st.sampled_from(["rr", "wlc", "sh"]))
    if svc["scheduler"] == "sh":
        svc["scheduler_flags"] = draw(st.lists(st.sampled_from(["sh-fallback", "sh-port"]), unique=True))
    svc["persistence_timeout"] = draw(st.sampled_from([0, 0, 300]))
    family = svc.get("family") or ("ipv6" if ":" in svc["address"] else "ipv4")
    real_servers = {}
    for addr in draw(st.lists(st.sampled_from(RS_ADDRS), unique=True, max_size=3)):
        same_family = (":" in addr) == (family == "ipv6")
        fwd = draw(st.sampled_from(["nat", "dr", "tunnel"])) if same_family else "tunnel"
        rs = {"address": addr, "forwarding": fwd, "weight": draw(st.integers(0, 3))}
        if svc.get("fwmark") is not None:
            rs["port"] = 80
        real_servers[addr] = rs
    svc["real_servers"] = list(real_servers.values())
    return svc


def tables():
    return st.lists(services(), max_size=4).map(
        lambda svcs: normalize_table(list({(s.get("fwmark"), s.get("family"), s.get("protocol"), s.get("address"),
                                            s.get("port")): s for s in svcs}.values())))


@settings(max_examples=300, deadline=None)
@given(want=tables(), have=tables())
def test_overridden_plan_applied_to_have_equals_want(want, have):
    ops = plan(want, have, "overridden")
    assert apply_ops(have, ops) == want
    assert plan(want, apply_ops(have, ops), "overridden") == []


@settings(max_examples=300, deadline=None)
@given(want=tables(), have=tables())
def test_merged_plan_yields_every_wanted_object_and_keeps_the_rest(want, have):
    after = apply_ops(have, plan(want, have, "merged"))
    after_by = {(s["fwmark"], s["family"], s["protocol"], s["address"], s["port"]): s for s in after}
    for svc in want:
        got = after_by[(svc["fwmark"], svc["family"], svc["protocol"], svc["address"], svc["port"])]
        assert service_config(got) == service_config(svc)
        for rs in svc["real_servers"]:
            assert rs in got["real_servers"]
    assert len(after) >= len(have)
    assert plan(want, after, "merged") == []


def _identity(op):
    rs = op.get("real_server")
    return (op["action"].split("_", 1)[1], service_key(op["service"]), real_server_key(rs) if rs else None)


@settings(max_examples=200, deadline=None)
@given(want=tables(), have=tables())
def test_ops_never_delete_and_readd_the_same_object(want, have):
    ops = plan(want, have, "overridden")
    added = {_identity(op) for op in ops if op["action"].startswith("add")}
    deleted = {_identity(op) for op in ops if op["action"].startswith("del")}
    assert not added & deleted


@settings(max_examples=300, deadline=None)
@given(want=tables(), have=tables(), cut=st.integers(0, 30))
def test_inverse_ops_undo_any_applied_prefix(want, have, cut):
    """Rollback: whatever prefix of a plan was applied, its inverse restores ``have``."""
    done = plan(want, have, "overridden")[:cut]
    assert apply_ops(apply_ops(have, done), inverse_ops(done, have)) == have


@settings(max_examples=200, deadline=None)
@given(want=tables(), have=tables())
def test_split_drain_reaches_the_same_table_through_weight_zero(want, have):
    ops = plan(want, have, "overridden")
    first, removals, waits = split_drain(ops, have)
    middle = apply_ops(have, first)
    assert apply_ops(middle, removals) == want
    for svc_key, rs_key in waits:
        (svc,) = [s for s in middle if service_key(s) == svc_key]
        assert [r["weight"] for r in svc["real_servers"] if real_server_key(r) == rs_key] == [0]
        assert svc["protocol"] != "udp"


def test_ownership_by_network_port_and_fwmark():
    owns = ownership({"addresses": ["10.0.0.0/24", "2001:db8::/64"], "ports": ["80", "8000-8099"], "fwmarks": ["5-9"]})
    svc = [table(s)[0] for s in ({"address": "10.0.0.7", "port": 8050}, {"address": "10.0.1.7", "port": 80},
                                 {"address": "10.0.0.7", "port": 443}, {"address": "2001:db8::1", "port": 80},
                                 {"fwmark": 5}, {"fwmark": 10})]
    assert [owns(s) for s in svc] == [True, False, False, True, True, False]
    assert ownership(None)(svc[1]) is True
    only_marks = ownership({"fwmarks": ["1"]})
    assert only_marks(svc[0]) is False


@pytest.mark.parametrize("owned, message", [
    ({"addresses": ["10.0.0.300/24"]}, "owned.addresses[0]: '10.0.0.300/24' is not an address or network"),
    ({"ports": ["80-70"]}, "owned.ports[0]: '80-70' is not a range within 0..65535"),
    ({"fwmarks": ["x"]}, "owned.fwmarks[0]: 'x' is not a number or a range like 100-199"),
])
def test_bad_ownership_names_the_field(owned, message):
    with pytest.raises(IPVSValidationError) as exc:
        ownership(owned)
    assert str(exc.value) == message
