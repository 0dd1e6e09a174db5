"""Model: canonical shape, defaults, keys, and validation messages that name the field."""

from __future__ import annotations

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    IPVSValidationError,
    normalize_real_server,
    normalize_service,
    normalize_table,
    service_key,
    service_label,
)

TCP80 = {"address": "10.0.0.1", "port": 80}


def test_service_defaults_match_ipvsadm():
    svc = normalize_service(TCP80)
    assert svc == {
        "family": "ipv4", "protocol": "tcp", "address": "10.0.0.1", "port": 80, "fwmark": None,
        "scheduler": "wlc", "scheduler_flags": [], "persistence_timeout": 0,
        "persistence_netmask": "255.255.255.255", "persistence_engine": None, "one_packet": False,
    }


def test_ipv6_service_is_canonical_and_keyed_by_compressed_address():
    svc = normalize_service({"address": "[2001:DB8:0::1]", "port": "443", "persistence_timeout": 60,
                             "persistence_netmask": "/64"})
    assert (svc["family"], svc["address"], svc["port"], svc["persistence_netmask"]) == ("ipv6", "2001:db8::1", 443, 64)
    assert service_key(svc) == ("tcp", "ipv6", "2001:db8::1", 443)
    assert service_label(svc) == "tcp [2001:db8::1]:443"


def test_fwmark_service_has_no_address_protocol_or_port():
    svc = normalize_service({"fwmark": 7, "family": "ipv6"})
    assert (svc["protocol"], svc["address"], svc["port"], svc["persistence_netmask"]) == (None, None, None, 128)
    assert service_key(svc) == ("fwmark", "ipv6", 7)


def test_ipv4_netmask_accepts_prefix_length():
    svc = normalize_service(dict(TCP80, persistence_timeout=300, persistence_netmask="24"))
    assert svc["persistence_netmask"] == "255.255.255.0"


def test_scheduler_flags_are_canonical_names_in_bit_order():
    svc = normalize_service(dict(TCP80, scheduler="sh", scheduler_flags="sh-port,sh-fallback"))
    assert svc["scheduler_flags"] == ["sh-fallback", "sh-port"]
    svc = normalize_service(dict(TCP80, scheduler="mh", scheduler_flags=["flag-2", "flag-1"]))
    assert svc["scheduler_flags"] == ["mh-fallback", "mh-port"]


@pytest.mark.parametrize("raw, field, words", [
    ({"address": "10.0.0.300", "port": 80}, "address", "not an IPv4 or IPv6 address"),
    ({"address": "224.0.0.1", "port": 80}, "address", "not a unicast address"),
    ({"address": "10.0.0.1", "port": 70000}, "port", "out of range 0..65535"),
    ({"address": "10.0.0.1"}, "port", "needs a port"),
    ({"address": "10.0.0.1", "port": 0}, "port", "needs a persistent service"),
    ({"address": "10.0.0.1", "port": 80, "scheduler": "fastest"}, "scheduler", "not one of"),
    ({"address": "10.0.0.1", "port": 80, "scheduler": "rr", "scheduler_flags": ["sh-port"]}, "scheduler_flags",
     "does not apply to scheduler 'rr'"),
    ({"address": "10.0.0.1", "port": 80, "scheduler_flags": ["flag-9"]}, "scheduler_flags", "unknown scheduler flag"),
    ({"address": "10.0.0.1", "port": 80, "persistence_netmask": "255.255.0.0"}, "persistence_netmask",
     "only applies to a persistent service"),
    ({"address": "10.0.0.1", "port": 80, "persistence_timeout": 60, "persistence_netmask": "255.0.300.0"},
     "persistence_netmask", "not an IPv4 netmask"),
    ({"address": "2001:db8::1", "port": 80, "persistence_timeout": 60, "persistence_netmask": 129},
     "persistence_netmask", "out of range 1..128"),
    ({"address": "10.0.0.1", "port": 80, "persistence_timeout": 2678401}, "persistence_timeout", "out of range"),
    ({"address": "10.0.0.1", "port": 80, "one_packet": True}, "one_packet", "only for UDP"),
    ({"fwmark": 3, "address": "10.0.0.1"}, "fwmark", "mutually exclusive"),
    ({"fwmark": 3, "protocol": "udp"}, "protocol", "no protocol"),
    ({"fwmark": 0}, "fwmark", "out of range 1.."),
    ({"fwmark": 2 ** 32}, "fwmark", "out of range"),
    ({"address": "10.0.0.1", "port": 80, "family": "ipv6"}, "family", "does not match"),
    ({"address": "10.0.0.1", "port": 80, "colour": "red"}, "colour", "unknown option"),
])
def test_bad_service_names_the_field(raw, field, words):
    with pytest.raises(IPVSValidationError) as exc:
        normalize_service(raw, "svc")
    assert exc.value.field == "svc." + field
    assert words in str(exc.value)
    assert str(exc.value).startswith("svc.%s: " % field)


def test_one_packet_allowed_on_udp_and_fwmark():
    assert normalize_service({"protocol": "udp", "address": "10.0.0.1", "port": 53, "one_packet": True})["one_packet"]
    assert normalize_service({"fwmark": 1, "one_packet": True})["one_packet"]


SVC = normalize_service(TCP80)
FWM6 = normalize_service({"fwmark": 1, "family": "ipv6"})


def test_real_server_defaults_follow_ipvsadm():
    rs = normalize_real_server({"address": "10.0.1.1"}, SVC)
    assert rs == {"address": "10.0.1.1", "port": 80, "forwarding": "dr", "weight": 1, "upper_threshold": 0,
                  "lower_threshold": 0, "tunnel_type": None, "tunnel_port": None, "tunnel_checksum": None}


def test_tunnel_defaults_and_aliases():
    rs = normalize_real_server({"address": "10.0.1.1", "forwarding": "ipip"}, SVC)
    assert (rs["forwarding"], rs["tunnel_type"], rs["tunnel_checksum"]) == ("tunnel", "ipip", None)
    rs = normalize_real_server({"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_type": "gre"}, SVC)
    assert rs["tunnel_checksum"] == "nocsum"
    rs = normalize_real_server({"address": "10.0.1.1", "forwarding": "masquerading", "port": 8080}, SVC)
    assert (rs["forwarding"], rs["port"]) == ("nat", 8080)


def test_what_the_kernel_keeps_is_accepted():
    # Seen in the lab (tests/unit/golden/REJECTED.md): pe without persistence, IPv6 fwmark port 0.
    assert normalize_service(dict(TCP80, persistence_engine="sip"))["persistence_engine"] == "sip"
    assert normalize_real_server({"address": "2001:db8::2"}, FWM6)["port"] == 0
    assert normalize_real_server({"address": "10.0.1.1", "weight": 70000}, SVC, kernel=True)["weight"] == 70000
    with pytest.raises(IPVSValidationError, match="weight: 70000 is out of range 0..65535"):
        normalize_real_server({"address": "10.0.1.1", "weight": 70000}, SVC)


def test_mixed_family_allowed_for_tunnel_only():
    rs = normalize_real_server({"address": "2001:db8::2", "forwarding": "tunnel"}, SVC)
    assert rs["address"] == "2001:db8::2"


@pytest.mark.parametrize("svc, raw, field, words", [
    (SVC, {"address": "10.0.1.1", "weight": 65536}, "weight", "out of range 0..65535"),
    (SVC, {"address": "10.0.1.1", "weight": -1}, "weight", "out of range"),
    (SVC, {"address": "10.0.1.1", "lower_threshold": 5}, "lower_threshold", "above upper_threshold 0"),
    (SVC, {"address": "10.0.1.1", "upper_threshold": 5, "lower_threshold": 6}, "lower_threshold", "above upper_threshold 5"),
    (SVC, {"address": "10.0.1.1", "forwarding": "dr", "port": 8080}, "port", "only forwarding=nat can map ports"),
    (SVC, {"address": "2001:db8::2", "forwarding": "nat"}, "address", "mixed families need forwarding=tunnel"),
    (SVC, {"address": "10.0.1.1", "forwarding": "nat", "tunnel_type": "gue"}, "tunnel_type", "only applies to forwarding=tunnel"),
    (SVC, {"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_type": "gue"}, "tunnel_port", "needs a tunnel_port"),
    (SVC, {"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_port": 6080}, "tunnel_port", "only applies to tunnel_type=gue"),
    (SVC, {"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_type": "gre", "tunnel_checksum": "remcsum"},
     "tunnel_checksum", "does not apply to tunnel_type=gre"),
    (SVC, {"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_checksum": "csum"}, "tunnel_checksum",
     "does not apply to tunnel_type=ipip"),
    (SVC, {"address": "10.0.1.1", "forwarding": "bounce"}, "forwarding", "not one of"),
    (SVC, {"port": 80}, "address", "needs an address"),
])
def test_bad_real_server_names_the_field(svc, raw, field, words):
    with pytest.raises(IPVSValidationError) as exc:
        normalize_real_server(raw, svc, "rs")
    assert exc.value.field == "rs." + field
    assert words in str(exc.value)


def test_table_refuses_duplicate_services_and_real_servers():
    with pytest.raises(IPVSValidationError, match=r"config\[1\]: service tcp 10.0.0.1:80 is also config\[0\]"):
        normalize_table([TCP80, dict(TCP80, scheduler="rr")])
    with pytest.raises(IPVSValidationError, match=r"config\[0\].real_servers\[1\]: real server 10.0.1.1:80 is listed twice"):
        normalize_table([dict(TCP80, real_servers=[{"address": "10.0.1.1"}, {"address": "10.0.1.1", "port": 80}])])


def test_table_is_sorted_like_ipvsadm():
    table = normalize_table([
        {"fwmark": 2}, {"fwmark": 1},
        {"address": "2001:db8::1", "port": 80},
        {"protocol": "udp", "address": "10.0.0.1", "port": 53},
        {"address": "10.0.0.2", "port": 80, "real_servers": [{"address": "10.0.1.9"}, {"address": "10.0.1.10"}]},
        TCP80,
    ])
    assert [service_label(s) for s in table] == [
        "tcp 10.0.0.1:80", "tcp 10.0.0.2:80", "udp 10.0.0.1:53", "tcp [2001:db8::1]:80", "fwmark 1", "fwmark 2"]
    assert [r["address"] for r in table[1]["real_servers"]] == ["10.0.1.9", "10.0.1.10"]
