"""Filters of the topology roles: validation messages name the field; predictions match ipvs_info."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.filter import lvs_topology as F

SVC = {"address": "192.0.2.10", "port": 80, "scheduler": "wrr",
       "real_servers": [{"address": "192.0.2.12", "weight": 1}, {"address": "192.0.2.11", "weight": 2}]}


def test_director_fills_defaults_sets_each_method_and_sorts():
    mixed = [dict(SVC, real_servers=[{"address": "192.0.2.12", "weight": 1}, {"address": "192.0.2.11", "weight": 2, "forwarding": "tun"}]),
             {"address": "192.0.2.20", "port": 80, "forwarding": "nat", "fullnat": True, "real_servers": [{"address": "10.0.1.11", "port": 8080}]},
             {"fwmark": 7, "real_servers": [{"address": "192.0.2.13"}]}]
    out = F.lvs_director(mixed, "dr", "director_services")
    first = out["table"][0]
    assert first["protocol"] == "tcp" and first["persistence_timeout"] == 0
    assert [(rs["address"], rs["forwarding"], rs["weight"]) for rs in first["real_servers"]] == [
        ("192.0.2.11", "tunnel", 2), ("192.0.2.12", "dr", 1)]
    assert out["vips"] == ["192.0.2.10/32", "192.0.2.20/32"] and out["fwmarks"] == [7]
    assert out["fullnat"] == [{"protocol": "tcp", "family": "ipv4", "address": "192.0.2.20", "port": 80}]
    assert out["nat_real_servers"] == [] and out["methods"] == ["dr", "nat", "tunnel"] and out["schedulers"] == ["wlc", "wrr"]


@pytest.mark.parametrize("services, message", [
    ([dict(SVC, address="192.0.2.300")], "x[0].address: '192.0.2.300' is not an IPv4 or IPv6 address"),
    ([dict(SVC, real_servers=[{"address": "192.0.2.11", "weight": 70000}])], "x[0].real_servers[0].weight: 70000 is out of range 0..65535"),
    ([dict(SVC, real_servers=[{"address": "192.0.2.11"}, {"address": "192.0.2.11"}])], "x[0].real_servers[1]: real server 192.0.2.11:80 is listed twice"),
    ([dict(SVC, real_servers=[])], "x[0].real_servers: a service needs at least one real server"),
    ([dict(SVC, forwarding="masq")], "x[0].forwarding: 'masq' is not one of nat, dr, tun"),
    ([dict(SVC, real_servers=[{"address": "192.0.2.11", "forwarding": "bogus"}])], "x[0].real_servers[0].forwarding: 'bogus' is not one of"),
    ([dict(SVC, fullnat=True)], "x[0].real_servers[0].forwarding: dr, but fullnat needs nat real servers"),
    ([dict(SVC, fullnat="yes")], "x[0].fullnat: 'yes' is not a boolean"),
    ([{"fwmark": 3, "fullnat": True, "real_servers": [{"address": "10.0.0.1", "forwarding": "nat"}]}], "x[0].fullnat: a fwmark service cannot be FULLNAT"),
    ([SVC, SVC], "x[1]: service tcp 192.0.2.10:80 is also x[0]"),
    ([dict(SVC, scheduler="rrr")], "x[0].scheduler: 'rrr' is not one of"),
])
def test_director_refuses_naming_the_field(services, message):
    with pytest.raises(AnsibleFilterError) as exc:
        F.lvs_director(services, "dr", "x")
    assert message in str(exc.value)


def test_director_refuses_an_unknown_role_forwarding():
    with pytest.raises(AnsibleFilterError, match="director_forwarding: 'gre' is not one of nat, dr, tun"):
        F.lvs_director([SVC], "gre")


def test_nat_rules_are_what_iptables_prints():
    out = F.lvs_director([{"address": "192.0.2.10", "port": 80, "fullnat": True, "real_servers": [{"address": "10.0.1.11", "port": 8080}]},
                          {"address": "2001:db8::10", "port": 53, "protocol": "udp", "fullnat": True,
                           "real_servers": [{"address": "2001:db8:1::11"}]}], "nat")
    rules = F.lvs_nat_rules(out, ["10.0.1.0/24", "2001:db8:1::/64"], "LVS-DIRECTOR", "eth0")
    assert rules == {
        "ipv4": ["-A LVS-DIRECTOR -s 10.0.1.0/24 -o eth0 -j MASQUERADE",
                 "-A LVS-DIRECTOR -m ipvs --vproto 6 --vaddr 192.0.2.10 --vport 80 --vdir ORIGINAL --vmethod MASQ -j MASQUERADE"],
        "ipv6": ["-A LVS-DIRECTOR -s 2001:db8:1::/64 -o eth0 -j MASQUERADE",
                 "-A LVS-DIRECTOR -m ipvs --vproto 17 --vaddr 2001:db8::10 --vport 53 --vdir ORIGINAL --vmethod MASQ -j MASQUERADE"]}
    assert F.lvs_nat_rules(F.lvs_director([SVC], "dr"), [], "X", "eth0") == {"ipv4": [], "ipv6": []}


def test_duplicates_and_keepalived_services():
    assert F.lvs_duplicates(["a", "b", "a", "c", "a", "b"]) == ["a", "b"]
    assert F.lvs_duplicates([]) == []
    table = F.lvs_director([SVC], "dr")["table"]
    (vs,) = F.lvs_keepalived_services(table, {"type": "TCP_CHECK"}, 1)
    assert vs["address"] == "192.0.2.10" and vs["port"] == 80 and vs["scheduler"] == "wrr" and vs["delay_loop"] == 1
    assert "persistence_timeout" not in vs and vs["checks"] == [{"type": "TCP_CHECK"}]
    assert vs["real_servers"] == [{"address": "192.0.2.11", "port": 80, "weight": 2, "forwarding": "dr"},
                                  {"address": "192.0.2.12", "port": 80, "weight": 1, "forwarding": "dr"}]


def test_vips():
    services = F.lvs_director([SVC], "dr")["table"]
    assert F.lvs_vips([], services) == ["192.0.2.10/32"]
    assert F.lvs_vips(["2001:db8::10", "192.0.2.10/32"]) == ["192.0.2.10/32", "2001:db8::10/128"]
    for bad, message in ((["192.0.2.300"], "v[0]: '192.0.2.300' is not an IPv4 or IPv6 address"),
                         (["192.0.2.10/24"], "a VIP is a single address (/32), not /24"),
                         (["127.0.0.1"], "cannot be a virtual address"),
                         (["192.0.2.10", "192.0.2.10"], "v[1]: 192.0.2.10 is listed twice")):
        with pytest.raises(AnsibleFilterError, match=r".*") as exc:
            F.lvs_vips(bad, None, "v")
        assert message in str(exc.value)


def test_networks_and_addr_text():
    assert F.lvs_networks(["10.0.1.5/24", "2001:db8::/64"]) == ["10.0.1.0/24", "2001:db8::/64"]
    with pytest.raises(AnsibleFilterError, match="m\\[0\\]: '10.0.1/x' is not"):
        F.lvs_networks(["10.0.1/x"], "m")
    assert F.lvs_addr_text({"local": "192.0.2.10", "prefixlen": 32}) == "192.0.2.10/32"


def test_site_builds_role_input_from_hostvars():
    hostvars = {"rs1": {"lvs_site_real_server": {"address": "10.0.1.11", "port": "8080", "weight": "2", "gateway": "10.0.1.1"}},
                "rs2": {"lvs_site_real_server": {"address": "10.0.1.12", "port": None, "weight": 1, "gateway": ""}}}
    out = F.lvs_site(hostvars, ["rs1", "rs2"], [{"address": "192.0.2.10", "port": 80},
                                                {"address": "192.0.2.10", "port": 443, "real_servers": [{"address": "10.0.1.13"}]}])
    assert out["services"][0]["real_servers"] == [{"address": "10.0.1.11", "weight": "2", "port": "8080"},
                                                  {"address": "10.0.1.12", "weight": 1}]
    assert out["services"][1]["real_servers"] == [{"address": "10.0.1.13"}]
    assert out["vips"] == ["192.0.2.10"]
    assert out["gateways"] == {"10.0.1.11": "10.0.1.1", "10.0.1.12": ""}
    with pytest.raises(AnsibleFilterError, match="rs3: no lvs_site_real_server fact"):
        F.lvs_site({"rs3": {}}, ["rs3"], [])
