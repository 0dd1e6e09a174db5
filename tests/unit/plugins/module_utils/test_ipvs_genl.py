"""struct encoder of IPVS generic-netlink messages: what pyroute2's own parser reads back from it."""

from __future__ import annotations

import struct

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_genl as genl
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table

pyroute2_ipvs = pytest.importorskip("pyroute2.netlink.generic.ipvs")

TABLE = normalize_table([
    {"address": "10.0.0.1", "port": 80, "scheduler": "sh", "scheduler_flags": ["sh-port"], "persistence_timeout": 300,
     "persistence_netmask": "255.255.255.0", "persistence_engine": "sip",
     "real_servers": [{"address": "10.0.1.1", "port": 8080, "forwarding": "nat", "weight": 7, "upper_threshold": 9,
                       "lower_threshold": 3},
                      {"address": "2001:db8::5", "forwarding": "tunnel", "tunnel_type": "gue", "tunnel_port": 6080,
                       "tunnel_checksum": "remcsum"}]},
    {"fwmark": 4000000000, "family": "ipv6", "persistence_timeout": 60, "persistence_netmask": 64, "one_packet": True},
])


def decode(cmd, attrs):
    """Wrap attributes in a full message and let pyroute2 parse it."""
    body = struct.pack("=BBH", cmd, 1, 0) + attrs
    data = struct.pack("=IHHII", 16 + len(body), 30, 1, 1, 0) + body
    msg = pyroute2_ipvs.ipvsmsg(data)
    msg.decode()
    return msg


def test_service_attributes_read_back_by_pyroute2():
    svc = TABLE[0]
    nla = decode(genl.CMD_NEW_SERVICE, genl.nla(genl.ATTR_SERVICE, genl.service_attrs(svc))).get_attr("IPVS_CMD_ATTR_SERVICE")
    keys = ("AF", "PROTOCOL", "ADDR", "PORT", "SCHED_NAME", "TIMEOUT", "NETMASK", "PE_NAME")
    got = {k: nla.get_attr("IPVS_SVC_ATTR_" + k) for k in keys}
    assert got == {"AF": 2, "PROTOCOL": 6, "ADDR": "10.0.0.1", "PORT": 80, "SCHED_NAME": "sh", "TIMEOUT": 300,
                   "NETMASK": "255.255.255.0", "PE_NAME": "sip"}
    # persistent (1) + sh-port (SCHED2, 0x10); the mask covers every bit so nothing stale survives.
    assert nla.get_attr("IPVS_SVC_ATTR_FLAGS") == {"flags": 0x11, "mask": 0xFFFFFFFF}


def test_ipv6_fwmark_service_sends_prefix_length_in_host_order():
    svc = TABLE[1]
    nla = decode(genl.CMD_SET_SERVICE, genl.nla(genl.ATTR_SERVICE, genl.service_attrs(svc))).get_attr("IPVS_CMD_ATTR_SERVICE")
    assert nla.get_attr("IPVS_SVC_ATTR_AF") == 10
    assert nla.get_attr("IPVS_SVC_ATTR_FWMARK") == 4000000000
    assert nla.get_attr("IPVS_SVC_ATTR_ADDR") is None
    assert struct.unpack("=I", bytes(int(x) for x in nla.get_attr("IPVS_SVC_ATTR_NETMASK").split(".")))[0] == 64
    assert nla.get_attr("IPVS_SVC_ATTR_FLAGS")["flags"] == 0x1 | 0x4


def test_dest_attributes_read_back_by_pyroute2():
    svc = TABLE[0]
    nat, gue = svc["real_servers"]
    msg = decode(genl.CMD_NEW_DEST, genl.nla(genl.ATTR_SERVICE, genl.service_key_attrs(svc))
                 + genl.nla(genl.ATTR_DEST, genl.dest_attrs(nat)))
    d = msg.get_attr("IPVS_CMD_ATTR_DEST")
    assert [d.get_attr("IPVS_DEST_ATTR_" + k) for k in ("ADDR", "PORT", "FWD_METHOD", "WEIGHT", "U_THRESH", "L_THRESH")] == \
        ["10.0.1.1", 8080, 0, 7, 9, 3]
    d = decode(genl.CMD_SET_DEST, genl.nla(genl.ATTR_DEST, genl.dest_attrs(gue))).get_attr("IPVS_CMD_ATTR_DEST")
    assert d.get_attr("IPVS_DEST_ATTR_ADDR") == "2001:db8::5" and d.get_attr("IPVS_DEST_ATTR_ADDR_FAMILY") == 10
    assert (d.get_attr("IPVS_DEST_ATTR_FWD_METHOD"), d.get_attr("IPVS_DEST_ATTR_TUN_TYPE"), d.get_attr("IPVS_DEST_ATTR_TUN_FLAGS")) == (2, 1, 2)
    # pyroute2 types tun_port as host-order uint16; the kernel reads it big-endian.
    assert struct.pack("=H", d.get_attr("IPVS_DEST_ATTR_TUN_PORT")) == struct.pack("!H", 6080)


def test_decode_inverts_encode_for_every_golden_shape():
    """What the kernel would echo back (the same attributes) decodes to the canonical record."""
    for svc in TABLE:
        raw = genl.service_attrs(svc)
        decoded = genl.decode_service(raw)
        assert decoded == {k: v for k, v in svc.items() if k != "real_servers"}
        for rs in svc.get("real_servers", []):
            assert genl.decode_dest(genl.dest_attrs(rs)) == rs


def test_attributes_are_padded_to_four_bytes():
    assert genl.nla(1, b"abc") == struct.pack("=HH", 7, 1) + b"abc\0"
    assert genl.parse_attrs(genl.nla(1, b"abc") + genl.nla(2, b"\1\2\3\4"))[2].tobytes() == b"\1\2\3\4"


def kernel_dest_layout(rs):
    """A real server's attributes in the order ip_vs_genl_fill_dest sends them (addresses in 16 bytes)."""
    af = 10 if ":" in rs["address"] else 2
    addr = genl._addr_bytes(rs["address"]).ljust(16, b"\0")
    tunnel = rs["forwarding"] == "tunnel"
    return (genl.nla(genl.DEST_ADDR, addr) + genl.nla(genl.DEST_PORT, struct.pack("!H", rs["port"]))
            + genl.nla(genl.DEST_FWD_METHOD, struct.pack("=I", {"nat": 0, "tunnel": 2, "dr": 3}[rs["forwarding"]]))
            + genl.nla(genl.DEST_WEIGHT, struct.pack("=I", rs["weight"]))
            + genl.nla(genl.DEST_TUN_TYPE, bytes([{"ipip": 0, "gue": 1, "gre": 2}[rs["tunnel_type"]] if tunnel else 0]))
            + genl.nla(genl.DEST_TUN_PORT, struct.pack("!H", rs["tunnel_port"] or 0))
            + genl.nla(genl.DEST_TUN_FLAGS, struct.pack("=H", {"nocsum": 0, "csum": 1, "remcsum": 2}[rs["tunnel_checksum"] or "nocsum"]))
            + genl.nla(genl.DEST_U_THRESH, struct.pack("=I", rs["upper_threshold"]))
            + genl.nla(genl.DEST_L_THRESH, struct.pack("=I", rs["lower_threshold"]))
            + genl.nla(genl.DEST_ACTIVE_CONNS, struct.pack("=I", 3)) + genl.nla(genl.DEST_INACT_CONNS, struct.pack("=I", 4))
            + genl.nla(genl.DEST_PERSIST_CONNS, struct.pack("=I", 5)) + genl.nla(genl.DEST_ADDR_FAMILY, struct.pack("=H", af))
            + genl.nla(genl.DEST_STATS64 | 0x8000, genl.nla(1, struct.pack("=Q", 9))))


def test_fast_dest_decoder_agrees_with_the_generic_one():
    for rs in TABLE[0]["real_servers"]:
        raw = kernel_dest_layout(rs)
        assert genl.decode_dest_fast(raw, 0, len(raw)) == genl.decode_dest(raw) == rs
    # Another layout (our own encoder's order) is left to the generic decoder.
    raw = genl.dest_attrs(TABLE[0]["real_servers"][0])
    assert genl.decode_dest_fast(raw, 0, len(raw)) is None
