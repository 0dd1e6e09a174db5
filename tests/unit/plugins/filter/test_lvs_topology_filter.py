"""Filters of the topology roles: validation messages name the field; predictions match ipvs_info."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.filter import lvs_topology as F

SVC = {"address": "192.0.2.10", "port": 80, "scheduler": "wrr",
       "real_servers": [{"address": "192.0.2.12", "weight": 1}, {"address": "192.0.2.11", "weight": 2}]}


def test_normalize_fills_defaults_forces_the_method_and_sorts():
    (svc,) = F.ipvs_normalize([SVC], "dr", "dr_director_services")
    assert svc["protocol"] == "tcp" and svc["persistence_timeout"] == 0
    assert [(rs["address"], rs["forwarding"], rs["weight"]) for rs in svc["real_servers"]] == [
        ("192.0.2.11", "dr", 2), ("192.0.2.12", "dr", 1)]


@pytest.mark.parametrize("services, message", [
    ([dict(SVC, address="192.0.2.300")], "x[0].address: '192.0.2.300' is not an IPv4 or IPv6 address"),
    ([dict(SVC, real_servers=[{"address": "192.0.2.11", "weight": 70000}])], "x[0].real_servers[0].weight: 70000 is out of range 0..65535"),
    ([dict(SVC, real_servers=[{"address": "192.0.2.11"}, {"address": "192.0.2.11"}])], "x[0].real_servers[1]: real server 192.0.2.11:80 is listed twice"),
    ([dict(SVC, real_servers=[])], "x[0].real_servers: a service needs at least one real server"),
    ([dict(SVC, real_servers=[{"address": "192.0.2.11", "forwarding": "nat"}])],
     "x[0].real_servers[0].forwarding: 'nat', but this role only builds dr real servers"),
    ([SVC, SVC], "x[1]: service tcp 192.0.2.10:80 is also x[0]"),
    ([dict(SVC, scheduler="rrr")], "x[0].scheduler: 'rrr' is not one of"),
])
def test_normalize_refuses_naming_the_field(services, message):
    with pytest.raises(AnsibleFilterError) as exc:
        F.ipvs_normalize(services, "dr", "x")
    assert message in str(exc.value)


def test_restore_text_merge_and_stale():
    want = F.ipvs_normalize([SVC], "dr")
    assert F.ipvs_restore_text(want) == ("-A -t 192.0.2.10:80 -s wrr\n-a -t 192.0.2.10:80 -r 192.0.2.11:80 -g -w 2\n"
                                         "-a -t 192.0.2.10:80 -r 192.0.2.12:80 -g -w 1\n")
    other = F.ipvs_normalize([{"address": "192.0.2.20", "port": 53, "protocol": "udp",
                               "real_servers": [{"address": "192.0.2.11"}]}], "dr")
    have = F.ipvs_normalize([dict(SVC, real_servers=[{"address": "192.0.2.13"}])], "dr") + other
    merged = F.ipvs_merge(have, want)
    assert [s["address"] for s in merged] == ["192.0.2.10", "192.0.2.20"]
    assert merged[0]["real_servers"] == want[0]["real_servers"]
    assert F.ipvs_stale_real_servers(have, want) == [
        {"service": {"protocol": "tcp", "address": "192.0.2.10", "port": 80, "family": "ipv4"}, "address": "192.0.2.13", "port": 80}]
    assert F.ipvs_stale_real_servers([], want) == []


def test_vips():
    services = F.ipvs_normalize([SVC], "dr")
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
