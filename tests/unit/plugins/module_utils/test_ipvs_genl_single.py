"""The single-object requests of the struct encoder: their exact shape (what libipvs sends).

A stand-in socket records what is sent and answers with messages built by the encoder itself;
the lab tests (test_ipvs_netlink_adapter.py) check the same requests against the kernel.
"""

from __future__ import annotations

import errno
import struct

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_genl as genl
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table

FAMILY = 0x22
TABLE = normalize_table([
    {"address": "10.0.0.1", "port": 80, "scheduler": "rr",
     "real_servers": [{"address": "10.0.1.1", "port": 8080, "forwarding": "nat", "weight": 7},
                      {"address": "10.0.1.2", "forwarding": "dr", "weight": 0}]},
    {"fwmark": 4000000000, "family": "ipv6", "persistence_timeout": 60, "persistence_netmask": 64},
])


def message(kind, seq, payload, flags=0):
    return struct.pack("=IHHII", 16 + len(payload), kind, flags, seq, 0) + payload


def genl_message(seq, cmd, attrs, flags=0):
    return message(FAMILY, seq, struct.pack("=BBH", cmd, 1, 0) + attrs, flags)


def error(seq, code):
    return message(genl.NLMSG_ERROR, seq, struct.pack("=i", -code) + b"\0" * 16)


class FakeSocket:
    """Records sent messages; ``answer(seq, header)`` gives the datagrams to read next."""

    def __init__(self, answer):
        self.answer = answer
        self.sent = []
        self.pending = []

    def send(self, data):
        self.sent.append(data)
        size, _kind, flags, seq, _pid = struct.unpack_from("=IHHII", data)
        assert size == len(data)
        self.pending.extend(self.answer(seq, flags, data[16:]))
        return len(data)

    def recv_into(self, buf):
        data = self.pending.pop(0)
        buf[:len(data)] = data
        return len(data)


def socket_for(answer):
    sock = genl.IPVSGenl.__new__(genl.IPVSGenl)
    sock.sock = FakeSocket(answer)
    sock._rbuf = memoryview(bytearray(64 * 1024))
    sock.seq = 0
    sock.family = FAMILY
    return sock


def request_of(data):
    """(flags, cmd, attributes) of a sent request."""
    _size, kind, flags, _seq, _pid = struct.unpack_from("=IHHII", data)
    assert kind == FAMILY
    cmd, version, _reserved = struct.unpack_from("=BBH", data, 16)
    assert version == genl.IPVS_GENL_VERSION
    return flags, cmd, bytes(data[20:])


@pytest.mark.parametrize("svc", TABLE, ids=["tcp", "fwmark6"])
def test_get_service_is_one_request_with_the_key_and_no_dump(svc):
    key = genl.service_key_attrs(svc)

    def answer(seq, flags, _payload):
        return [genl_message(seq, genl.CMD_NEW_SERVICE, genl.nla(genl.ATTR_SERVICE, genl.service_attrs(svc)))]

    sock = socket_for(answer)
    got = sock.get_service(key)
    (sent,) = sock.sock.sent
    flags, cmd, attrs = request_of(sent)
    assert cmd == genl.CMD_GET_SERVICE
    # A plain request: no NLM_F_DUMP, and no acknowledgement left unread behind the answer.
    assert flags == genl.NLM_F_REQUEST
    assert attrs == genl.nla(genl.ATTR_SERVICE, key)
    assert got == {k: v for k, v in svc.items() if k != "real_servers"}
    assert not sock.sock.pending


def test_get_service_of_a_missing_service_is_none_and_other_errors_raise():
    sock = socket_for(lambda seq, flags, payload: [error(seq, errno.ESRCH)])
    assert sock.get_service(genl.service_key_attrs(TABLE[0])) is None
    sock = socket_for(lambda seq, flags, payload: [error(seq, errno.EPERM)])
    with pytest.raises(genl.GenlError) as caught:
        sock.get_service(genl.service_key_attrs(TABLE[0]))
    assert caught.value.errno == errno.EPERM


def test_get_dests_is_a_dump_of_one_service_only():
    svc = TABLE[0]
    key = genl.service_key_attrs(svc)

    def answer(seq, flags, _payload):
        parts = [genl_message(seq, genl.CMD_NEW_DEST, genl.nla(genl.ATTR_DEST, genl.dest_attrs(rs)), genl.NLM_F_MULTI)
                 for rs in svc["real_servers"]]
        return [b"".join(parts), message(genl.NLMSG_DONE, seq, b"\0\0\0\0", genl.NLM_F_MULTI)]

    sock = socket_for(answer)
    got = sock.get_dests(key)
    flags, cmd, attrs = request_of(sock.sock.sent[0])
    assert cmd == genl.CMD_GET_DEST
    assert flags == genl.NLM_F_REQUEST | genl.NLM_F_DUMP
    assert attrs == genl.nla(genl.ATTR_SERVICE, key)
    assert got == svc["real_servers"]


def test_get_dests_of_a_missing_service_is_empty():
    sock = socket_for(lambda seq, flags, payload: [message(genl.NLMSG_DONE, seq, b"\0\0\0\0", genl.NLM_F_MULTI)])
    assert sock.get_dests(genl.service_key_attrs(TABLE[0])) == []
