# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPVS generic-netlink messages encoded with ``struct``: the wire format of the netlink adapter.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Standard library only. ``_ipvs_netlink`` sends every IPVS request through it: whole-table
dumps (one parse per attribute, no per-object classes), the read of one service and its
real servers (a get and a dump of that service only, as libipvs sends them), single
acknowledged changes, batches of thousands of requests in a few ``sendmsg`` calls (the
kernel runs every request of a batch and reports each failure by sequence number), the
timeouts (``ipvsadm --set``) and the connection-sync daemon, whose attributes pyroute2
leaves untyped. Its import costs a small fraction of pyroute2's (~0.7 s in a lab guest).
Message layouts follow include/uapi/linux/ip_vs.h.
"""

from __future__ import annotations

import errno as _errno
import os
import socket
import struct
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    FAMILIES,
    FORWARDING,
    PROTOCOLS,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    TUNNEL_CHECKSUMS,
    TUNNEL_TYPES,
    sched_flag_bits,
    sched_flag_names,
)

NETLINK_GENERIC = 16
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x2, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 1, 2
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33

IPVS_GENL_NAME, IPVS_GENL_VERSION = "IPVS", 1
(CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE, CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST,
 CMD_GET_DEST, CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON, CMD_SET_CONFIG, CMD_GET_CONFIG) = range(1, 14)
ATTR_SERVICE, ATTR_DEST, ATTR_DAEMON, ATTR_TIMEOUT_TCP, ATTR_TIMEOUT_TCP_FIN, ATTR_TIMEOUT_UDP = range(1, 7)
(SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK, SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK,
 SVC_STATS, SVC_PE_NAME, SVC_STATS64) = range(1, 13)
(DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH, DEST_ACTIVE_CONNS,
 DEST_INACT_CONNS, DEST_PERSIST_CONNS, DEST_STATS, DEST_ADDR_FAMILY, DEST_STATS64, DEST_TUN_TYPE, DEST_TUN_PORT,
 DEST_TUN_FLAGS) = range(1, 16)
(DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID, DAEMON_SYNC_MAXLEN, DAEMON_MCAST_GROUP, DAEMON_MCAST_GROUP6,
 DAEMON_MCAST_PORT, DAEMON_MCAST_TTL) = range(1, 9)
DAEMON_STATES = {"master": 1, "backup": 2}
STATS_KEYS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps", "inbps", "outbps")

_HDR = struct.Struct("=IHHII")
_GENL = struct.Struct("=BBH")
_NLA = struct.Struct("=HH")
_U16, _U32, _BE16, _U64 = struct.Struct("=H"), struct.Struct("=I"), struct.Struct("!H"), struct.Struct("=Q")
_FWD_NAMES = {0: "nat", 1: "dr", 2: "tunnel", 3: "dr"}
_LITTLE = struct.pack("=H", 1) == b"\1\0"
_TUN_TYPE_NAMES = {v: k for k, v in TUNNEL_TYPES.items()}
_TUN_CSUM_NAMES = {v: k for k, v in TUNNEL_CHECKSUMS.items()}
_PROTO_NAMES = {v: k for k, v in PROTOCOLS.items()}
_AF_NAMES = {v: k for k, v in FAMILIES.items()}
# Replies to a batch are read after every this many bytes of requests (the socket buffers are large).
BATCH_BYTES = 256 * 1024


class GenlError(OSError):
    """A request was refused: ``errno`` and the ``index`` of the request in its batch."""

    def __init__(self, code: int, index: int = -1) -> None:
        super().__init__(code, os.strerror(code))
        self.index = index


def nla(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size % 4)


def parse_attrs(data: bytes | memoryview, offset: int = 0, end: int | None = None) -> dict[int, memoryview]:
    """Top-level attributes of a payload, by type (NLA_F_NESTED / byte-order bits masked)."""
    view = memoryview(data)
    end = len(view) if end is None else end
    attrs = {}
    unpack = _NLA.unpack_from
    while offset + 4 <= end:
        size, kind = unpack(view, offset)
        if size < 4:
            break
        attrs[kind & 0x3FFF] = view[offset + 4:offset + size]
        offset += (size + 3) & ~3
    return attrs


def _addr_bytes(address: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


def _addr_text(raw: memoryview, family: int) -> str:
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, bytes(raw[:16]))
    return socket.inet_ntop(socket.AF_INET, bytes(raw[:4]))


def service_key_attrs(svc: t.Mapping[str, t.Any]) -> bytes:
    """The attributes that identify a service."""
    af = FAMILIES[svc["family"]]
    if svc.get("fwmark") is not None:
        return nla(SVC_AF, _U16.pack(af)) + nla(SVC_PROTOCOL, _U16.pack(PROTOCOLS["tcp"])) + nla(SVC_FWMARK, _U32.pack(svc["fwmark"]))
    return (nla(SVC_AF, _U16.pack(af)) + nla(SVC_PROTOCOL, _U16.pack(PROTOCOLS[svc["protocol"]]))
            + nla(SVC_ADDR, _addr_bytes(svc["address"])) + nla(SVC_PORT, _BE16.pack(svc["port"])))


def service_attrs(svc: t.Mapping[str, t.Any]) -> bytes:
    """Every attribute of a service (add / set): flags are sent in full with an all-ones mask."""
    flags = sched_flag_bits(svc["scheduler"], svc["scheduler_flags"])
    if svc["persistence_timeout"]:
        flags |= SVC_F_PERSISTENT
    if svc["one_packet"]:
        flags |= SVC_F_ONEPACKET
    netmask = svc["persistence_netmask"]
    # IPv4: the mask in network order; IPv6: the prefix length, a host-order u32.
    mask = _U32.pack(netmask) if svc["family"] == "ipv6" else socket.inet_aton(netmask)
    out = (service_key_attrs(svc) + nla(SVC_SCHED_NAME, svc["scheduler"].encode() + b"\0")
           + nla(SVC_FLAGS, struct.pack("=II", flags, 0xFFFFFFFF)) + nla(SVC_TIMEOUT, _U32.pack(svc["persistence_timeout"]))
           + nla(SVC_NETMASK, mask))
    if svc.get("persistence_engine"):
        out += nla(SVC_PE_NAME, svc["persistence_engine"].encode() + b"\0")
    return out


def dest_attrs(rs: t.Mapping[str, t.Any], key_only: bool = False) -> bytes:
    af = socket.AF_INET6 if ":" in rs["address"] else socket.AF_INET
    out = nla(DEST_ADDR, _addr_bytes(rs["address"])) + nla(DEST_PORT, _BE16.pack(rs["port"]))
    if key_only:
        return out + nla(DEST_ADDR_FAMILY, _U16.pack(af))
    tunnel = rs["forwarding"] == "tunnel"
    return (out + nla(DEST_FWD_METHOD, _U32.pack(FORWARDING[rs["forwarding"]])) + nla(DEST_WEIGHT, _U32.pack(rs["weight"]))
            + nla(DEST_U_THRESH, _U32.pack(rs["upper_threshold"])) + nla(DEST_L_THRESH, _U32.pack(rs["lower_threshold"]))
            + nla(DEST_ADDR_FAMILY, _U16.pack(af))
            + nla(DEST_TUN_TYPE, bytes([TUNNEL_TYPES[rs["tunnel_type"]] if tunnel else 0]))
            + nla(DEST_TUN_PORT, _BE16.pack((rs.get("tunnel_port") or 0) if tunnel else 0))
            + nla(DEST_TUN_FLAGS, _U16.pack(TUNNEL_CHECKSUMS[rs.get("tunnel_checksum") or "nocsum"] if tunnel else 0)))


def _scan(buf: bytes, off: int, end: int) -> dict[int, tuple[int, int]]:
    """Attributes between ``off`` and ``end`` of ``buf``: type -> (value offset, value length)."""
    out = {}
    unpack = _NLA.unpack_from
    while off + 4 <= end:
        size, kind = unpack(buf, off)
        if size < 4:
            break
        out[kind & 0x3FFF] = (off + 4, size - 4)
        off += (size + 3) & ~3
    return out


def _stats(buf: bytes, span: tuple[int, int] | None) -> tuple[dict[str, int], dict[str, int]]:
    values = dict.fromkeys(STATS_KEYS, 0)
    if span is not None:
        for kind, (off, size) in _scan(buf, span[0], span[0] + span[1]).items():
            if 1 <= kind <= 10:
                values[STATS_KEYS[kind - 1]] = _U64.unpack_from(buf, off)[0] if size >= 8 else _U32.unpack_from(buf, off)[0]
    return ({k: values[k] for k in STATS_KEYS[:5]}, {k: values[k] for k in STATS_KEYS[5:]})


def _text(buf: bytes, span: tuple[int, int]) -> str:
    return buf[span[0]:span[0] + span[1]].split(b"\0", 1)[0].decode()


def decode_service(buf: bytes, off: int = 0, end: int | None = None, stats: bool = False) -> dict[str, t.Any]:
    """A dumped service (its attributes in ``buf[off:end]``) as a canonical record.

    The kernel's data is trusted: it is not validated again.
    """
    a = _scan(buf, off, len(buf) if end is None else end)
    u16, u32 = _U16.unpack_from, _U32.unpack_from
    af = u16(buf, a[SVC_AF][0])[0]
    family = _AF_NAMES[af]
    flags = u32(buf, a[SVC_FLAGS][0])[0]
    sched = _text(buf, a[SVC_SCHED_NAME])
    fwmark = u32(buf, a[SVC_FWMARK][0])[0] if SVC_FWMARK in a else 0
    persistent = bool(flags & SVC_F_PERSISTENT)
    if persistent:
        mask_at = a[SVC_NETMASK][0]
        netmask: t.Any = u32(buf, mask_at)[0] if family == "ipv6" else socket.inet_ntoa(buf[mask_at:mask_at + 4])
    else:
        netmask = 128 if family == "ipv6" else "255.255.255.255"
    if fwmark:
        protocol = address = port = None
    else:
        at = a[SVC_ADDR][0]
        protocol = _PROTO_NAMES[u16(buf, a[SVC_PROTOCOL][0])[0]]
        address = socket.inet_ntop(af, buf[at:at + (16 if af == socket.AF_INET6 else 4)])
        port = _BE16.unpack_from(buf, a[SVC_PORT][0])[0]
    svc = {
        "family": family,
        "protocol": protocol,
        "address": address,
        "port": port,
        "fwmark": fwmark or None,
        "scheduler": sched,
        "scheduler_flags": sched_flag_names(sched, flags) if flags & 0x38 else [],
        "persistence_timeout": u32(buf, a[SVC_TIMEOUT][0])[0] if persistent else 0,
        "persistence_netmask": netmask,
        "persistence_engine": (_text(buf, a[SVC_PE_NAME]) or None) if SVC_PE_NAME in a else None,
        "one_packet": bool(flags & SVC_F_ONEPACKET),
    }
    if stats:
        svc["stats"], svc["rates"] = _stats(buf, a.get(SVC_STATS64))
    return svc


# The layout in which Linux (ip_vs_genl_fill_dest, 4.18 and later) sends a real server's
# attributes before its two counter nests. When a dump matches it (checked header by header,
# in one unpack and one tuple comparison), the values are read in one more unpack; anything
# else goes through the generic decoder. This halves the cost of a 50,000-entry dump.
_DEST_LAYOUT = ((DEST_ADDR, "16s"), (DEST_PORT, "H2x"), (DEST_FWD_METHOD, "I"), (DEST_WEIGHT, "I"),
                (DEST_TUN_TYPE, "B3x"), (DEST_TUN_PORT, "H2x"), (DEST_TUN_FLAGS, "H2x"), (DEST_U_THRESH, "I"),
                (DEST_L_THRESH, "I"), (DEST_ACTIVE_CONNS, "I"), (DEST_INACT_CONNS, "I"), (DEST_PERSIST_CONNS, "I"),
                (DEST_ADDR_FAMILY, "H2x"))
_DEST_SIZES = {"16s": 16, "H2x": 2, "I": 4, "B3x": 1}
_DEST_HEADERS = struct.Struct("=" + "".join("I%dx" % ((_DEST_SIZES[f] + 3) & ~3) for _k, f in _DEST_LAYOUT))
_DEST_EXPECTED = tuple((_DEST_SIZES[f] + 4) | (k << 16) for k, f in _DEST_LAYOUT)
_DEST_VALUES = struct.Struct("=" + "".join("4x" + f for _k, f in _DEST_LAYOUT))


def _swap16(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


def decode_dest_fast(buf: bytes, off: int, end: int) -> dict[str, t.Any] | None:
    """``decode_dest`` for the kernel's usual layout, without counters; None if it does not match."""
    if end - off < _DEST_HEADERS.size or _DEST_HEADERS.unpack_from(buf, off) != _DEST_EXPECTED:
        return None
    (addr, port, fwd, weight, tun_type, tun_port, tun_flags, upper, lower, _active, _inact, _persist,
     af) = _DEST_VALUES.unpack_from(buf, off)
    fwd = _FWD_NAMES[fwd & 0x7]
    rs = {
        "address": socket.inet_ntop(af, addr if af == socket.AF_INET6 else addr[:4]),
        "port": _swap16(port) if _LITTLE else port,
        "forwarding": fwd,
        "weight": weight,
        "upper_threshold": upper,
        "lower_threshold": lower,
        "tunnel_type": None, "tunnel_port": None, "tunnel_checksum": None,
    }
    if fwd == "tunnel":
        tun = _TUN_TYPE_NAMES.get(tun_type, "ipip")
        rs["tunnel_type"] = tun
        if tun == "gue":
            rs["tunnel_port"] = _swap16(tun_port) if _LITTLE else tun_port
        if tun != "ipip":
            rs["tunnel_checksum"] = _TUN_CSUM_NAMES.get(tun_flags, "nocsum")
    return rs


def decode_dest(buf: bytes, off: int = 0, end: int | None = None, stats: bool = False) -> dict[str, t.Any]:
    """A dumped real server (its attributes in ``buf[off:end]``) as a canonical record."""
    a = _scan(buf, off, len(buf) if end is None else end)
    u32 = _U32.unpack_from
    af = _U16.unpack_from(buf, a[DEST_ADDR_FAMILY][0])[0] if DEST_ADDR_FAMILY in a else socket.AF_INET
    at = a[DEST_ADDR][0]
    fwd = _FWD_NAMES[u32(buf, a[DEST_FWD_METHOD][0])[0] & 0x7]
    rs: dict[str, t.Any] = {
        "address": socket.inet_ntop(af, buf[at:at + (16 if af == socket.AF_INET6 else 4)]),
        "port": _BE16.unpack_from(buf, a[DEST_PORT][0])[0],
        "forwarding": fwd,
        "weight": u32(buf, a[DEST_WEIGHT][0])[0],
        "upper_threshold": u32(buf, a[DEST_U_THRESH][0])[0],
        "lower_threshold": u32(buf, a[DEST_L_THRESH][0])[0],
        "tunnel_type": None, "tunnel_port": None, "tunnel_checksum": None,
    }
    if fwd == "tunnel":
        tun = _TUN_TYPE_NAMES.get(buf[a[DEST_TUN_TYPE][0]] if DEST_TUN_TYPE in a else 0, "ipip")
        rs["tunnel_type"] = tun
        if tun == "gue":
            rs["tunnel_port"] = _BE16.unpack_from(buf, a[DEST_TUN_PORT][0])[0]
        if tun != "ipip":
            flags = _U16.unpack_from(buf, a[DEST_TUN_FLAGS][0])[0] if DEST_TUN_FLAGS in a else 0
            rs["tunnel_checksum"] = _TUN_CSUM_NAMES.get(flags, "nocsum")
    if stats:
        rs["active_connections"] = u32(buf, a[DEST_ACTIVE_CONNS][0])[0]
        rs["inactive_connections"] = u32(buf, a[DEST_INACT_CONNS][0])[0]
        rs["persistent_connections"] = u32(buf, a[DEST_PERSIST_CONNS][0])[0]
        rs["stats"], rs["rates"] = _stats(buf, a.get(DEST_STATS64))
    return rs


def _decode_dests(replies: t.Iterable[tuple[bytes, int, int]], stats: bool) -> list[dict[str, t.Any]]:
    """The real servers of one IPVS_CMD_GET_DEST dump (its replies as from ``request_spans``)."""
    real_servers = []
    for dbuf, dstart, dend in replies:
        dsize, dkind = _NLA.unpack_from(dbuf, dstart)
        if dkind & 0x3FFF != ATTR_DEST:
            dstart, dsize = _scan(dbuf, dstart, dend)[ATTR_DEST]
            dstart -= 4
            dsize += 4
        rs = None if stats else decode_dest_fast(dbuf, dstart + 4, dstart + dsize)
        real_servers.append(rs or decode_dest(dbuf, dstart + 4, dstart + dsize, stats))
    return real_servers


class IPVSGenl:
    """A generic-netlink socket bound to the IPVS family of the current network namespace."""

    def __init__(self, bufsize: int = 32 * 1024 * 1024, readsize: int = 1 << 20) -> None:
        """``bufsize``: the socket buffers; ``readsize``: the buffer one read lands in (a dump
        part is at most 32 KiB, but one read of a batch's replies may hold many)."""
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        for force, plain in ((SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, force, bufsize)
            except OSError:  # without CAP_NET_ADMIN: the ordinary, capped option
                self.sock.setsockopt(socket.SOL_SOCKET, plain, bufsize)
        self.sock.bind((0, 0))
        self._rbuf = memoryview(bytearray(readsize))
        self.seq = 0
        self.family = self._resolve(IPVS_GENL_NAME)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "IPVSGenl":
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.close()

    def _message(self, family: int, cmd: int, attrs: bytes, flags: int, version: int = IPVS_GENL_VERSION) -> tuple[int, bytes]:
        self.seq += 1
        body = _GENL.pack(cmd, version, 0) + attrs
        return self.seq, _HDR.pack(16 + len(body), family, flags, self.seq, 0) + body

    def _read(self) -> tuple[bytes, list[tuple[int, int, int, int]]]:
        """One read: the buffer and (type, seq, payload start, payload end) of each message."""
        # Into a buffer allocated once: a fresh 1 MiB bytes object per read costs page faults,
        # which are expensive (under user-mode Linux, very).
        size = self.sock.recv_into(self._rbuf)
        data = self._rbuf[:size].tobytes()
        msgs = []
        offset = 0
        unpack = _HDR.unpack_from
        while offset + 16 <= len(data):
            size, kind, _flags, seq, _pid = unpack(data, offset)
            msgs.append((kind, seq, offset + 16, offset + size))
            offset += (size + 3) & ~3
        return data, msgs

    def _replies(self) -> t.Iterator[tuple[int, int, memoryview]]:
        """(type, seq, payload) of every message of one read."""
        data, msgs = self._read()
        view = memoryview(data)
        for kind, seq, start, end in msgs:
            yield kind, seq, view[start:end]

    def _resolve(self, name: str) -> int:
        seq, msg = self._message(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, nla(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"),
                                 NLM_F_REQUEST, version=1)
        self.sock.send(msg)
        for kind, rseq, payload in self._replies():
            if kind == NLMSG_ERROR:
                code = -struct.unpack("=i", payload[:4])[0]
                raise GenlError(code or _errno.ENOENT)
            if rseq == seq:
                return _U16.unpack(parse_attrs(payload, 4)[CTRL_ATTR_FAMILY_ID][:2])[0]
        raise GenlError(_errno.ENOENT)

    def request(self, cmd: int, attrs: bytes = b"", dump: bool = False) -> list[memoryview]:
        """One request; returns the payloads (after the genl header) of its replies."""
        return [memoryview(buf)[start:end] for buf, start, end in self.request_spans(cmd, attrs, dump)]

    def request_spans(self, cmd: int, attrs: bytes = b"", dump: bool = False, ack: bool = True) -> list[tuple[bytes, int, int]]:
        """One request; its replies as (buffer, start, end) of the payload after the genl header.

        ``ack=False`` (a get that answers with one message): no acknowledgement is asked for, so
        none is left unread on the socket after the answer; a refusal still comes back.
        """
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else (NLM_F_ACK if ack else 0))
        seq, msg = self._message(self.family, cmd, attrs, flags)
        self.sock.send(msg)
        out = []
        while True:
            data, msgs = self._read()
            for kind, rseq, start, end in msgs:
                if rseq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, start)[0]
                    if code:
                        raise GenlError(code)
                    return out
                if kind == NLMSG_DONE:
                    return out
                out.append((data, start + 4, end))
                if not dump:
                    return out

    # ------------------------------------------------------------------ table
    def dump(self, stats: bool = False) -> list[dict[str, t.Any]]:
        """Every service with its real servers (unsorted; canonical records)."""
        services, idents = [], []
        for buf, start, end in self.request_spans(CMD_GET_SERVICE, dump=True):
            off, size = _scan(buf, start, end)[ATTR_SERVICE]
            services.append(decode_service(buf, off, off + size, stats))
            key = _scan(buf, off, off + size)
            # The service's own identifying attributes, copied as the kernel sent them.
            idents.append(b"".join(nla(k, buf[key[k][0]:key[k][0] + key[k][1]])
                                   for k in (SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK) if k in key))
        for svc, replies in zip(services, self._dest_dumps(idents)):
            svc["real_servers"] = _decode_dests(replies, stats)
        return services

    def get_service(self, key: bytes, stats: bool = False) -> dict[str, t.Any] | None:
        """One service by its identifying attributes (``service_key_attrs``), without its real
        servers; None when the kernel has no such service.

        IPVS_CMD_GET_SERVICE with the key nested in IPVS_CMD_ATTR_SERVICE and no NLM_F_DUMP, as
        libipvs' ipvs_get_service sends it: the kernel (ip_vs_genl_get_cmd) looks the one service
        up and answers with one message, or refuses with ESRCH.
        """
        try:
            replies = self.request_spans(CMD_GET_SERVICE, nla(ATTR_SERVICE, key), ack=False)
        except GenlError as exc:
            if exc.errno == _errno.ESRCH:
                return None
            raise
        if not replies:
            return None
        buf, start, end = replies[0]
        off, size = _scan(buf, start, end)[ATTR_SERVICE]
        return decode_service(buf, off, off + size, stats)

    def get_dests(self, key: bytes, stats: bool = False) -> list[dict[str, t.Any]]:
        """The real servers of one service (unsorted): an IPVS_CMD_GET_DEST dump for that service
        only, as libipvs' ipvs_get_dests sends it (empty when there is no such service)."""
        return _decode_dests(self.request_spans(CMD_GET_DEST, nla(ATTR_SERVICE, key), dump=True), stats)

    def _dest_dumps(self, idents: t.Sequence[bytes]) -> t.Iterator[list[tuple[bytes, int, int]]]:
        """The real-server dump of each service, one after the other.

        (A socket runs one dump at a time, and an IPVS dump only ends on the read after its
        data, so dumps cannot be pipelined on one socket.)
        """
        for ident in idents:
            yield self.request_spans(CMD_GET_DEST, nla(ATTR_SERVICE, ident), dump=True)

    def batch(self, requests: t.Sequence[tuple[int, bytes]]) -> list[tuple[int, int]]:
        """Send (cmd, attrs) requests in few send calls; returns (index, errno) of every failure.

        The kernel handles each request of a batch even after one fails; only the last request
        of each chunk asks for an acknowledgement, failures report themselves.
        """
        failures: list[tuple[int, int]] = []
        first_seq = self.seq + 1
        chunk: list[bytes] = []
        size = 0
        for i, (cmd, attrs) in enumerate(requests):
            last = i == len(requests) - 1
            flags = NLM_F_REQUEST
            if last or size + len(attrs) + 20 >= BATCH_BYTES:
                flags |= NLM_F_ACK
            seq, msg = self._message(self.family, cmd, attrs, flags)
            chunk.append(msg)
            size += len(msg)
            if flags & NLM_F_ACK:
                # One buffer: sendmsg takes at most 1024 iovecs (EMSGSIZE beyond).
                self.sock.send(b"".join(chunk))
                failures.extend(self._collect(first_seq, seq))
                chunk, size = [], 0
        return failures

    def _collect(self, first_seq: int, ack_seq: int) -> list[tuple[int, int]]:
        failures = []
        while True:
            for kind, seq, payload in self._replies():
                if kind != NLMSG_ERROR:
                    continue
                code = -struct.unpack("=i", payload[:4])[0]
                if code:
                    failures.append((seq - first_seq, code))
                if seq == ack_seq:
                    return failures

    # --------------------------------------------------------- config, daemon
    def get_timeouts(self) -> dict[str, int]:
        (payload,) = self.request(CMD_GET_CONFIG)
        a = parse_attrs(payload)
        return {name: _U32.unpack(a[kind][:4])[0] if kind in a else 0
                for name, kind in (("tcp", ATTR_TIMEOUT_TCP), ("tcpfin", ATTR_TIMEOUT_TCP_FIN), ("udp", ATTR_TIMEOUT_UDP))}

    def set_timeouts(self, tcp: int, tcpfin: int, udp: int) -> None:
        """Like ``ipvsadm --set``: 0 leaves a timeout unchanged."""
        self.request(CMD_SET_CONFIG, nla(ATTR_TIMEOUT_TCP, _U32.pack(tcp)) + nla(ATTR_TIMEOUT_TCP_FIN, _U32.pack(tcpfin))
                     + nla(ATTR_TIMEOUT_UDP, _U32.pack(udp)))

    def get_daemons(self) -> list[dict[str, t.Any]]:
        daemons = []
        for payload in self.request(CMD_GET_DAEMON, dump=True):
            a = parse_attrs(parse_attrs(payload)[ATTR_DAEMON])  # a few attributes: views are fine here
            state = _U32.unpack(a[DAEMON_STATE][:4])[0]
            group = None
            if DAEMON_MCAST_GROUP6 in a and any(bytes(a[DAEMON_MCAST_GROUP6][:16])):
                group = socket.inet_ntop(socket.AF_INET6, bytes(a[DAEMON_MCAST_GROUP6][:16]))
            elif DAEMON_MCAST_GROUP in a and any(bytes(a[DAEMON_MCAST_GROUP][:4])):
                group = socket.inet_ntoa(bytes(a[DAEMON_MCAST_GROUP][:4]))
            daemons.append({
                "state": {1: "master", 2: "backup"}.get(state, str(state)),
                "interface": bytes(a[DAEMON_MCAST_IFN]).split(b"\0", 1)[0].decode(),
                "syncid": _U32.unpack(a[DAEMON_SYNC_ID][:4])[0],
                "sync_maxlen": _U16.unpack(a[DAEMON_SYNC_MAXLEN][:2])[0] if DAEMON_SYNC_MAXLEN in a else 0,
                "mcast_group": group,
                "mcast_port": _U16.unpack(a[DAEMON_MCAST_PORT][:2])[0] if DAEMON_MCAST_PORT in a else 0,
                "mcast_ttl": a[DAEMON_MCAST_TTL][0] if DAEMON_MCAST_TTL in a else 0,
            })
        return daemons

    def start_daemon(self, daemon: t.Mapping[str, t.Any]) -> None:
        attrs = (nla(DAEMON_STATE, _U32.pack(DAEMON_STATES[daemon["state"]]))
                 + nla(DAEMON_MCAST_IFN, daemon["interface"].encode() + b"\0")
                 + nla(DAEMON_SYNC_ID, _U32.pack(daemon["syncid"])))
        if daemon.get("sync_maxlen"):
            attrs += nla(DAEMON_SYNC_MAXLEN, _U16.pack(daemon["sync_maxlen"]))
        group = daemon.get("mcast_group")
        if group:
            attrs += nla(DAEMON_MCAST_GROUP6, _addr_bytes(group)) if ":" in group else nla(DAEMON_MCAST_GROUP, _addr_bytes(group))
        if daemon.get("mcast_port"):
            attrs += nla(DAEMON_MCAST_PORT, _U16.pack(daemon["mcast_port"]))  # host order, unlike service ports
        if daemon.get("mcast_ttl"):
            attrs += nla(DAEMON_MCAST_TTL, bytes([daemon["mcast_ttl"]]))
        self.request(CMD_NEW_DAEMON, nla(ATTR_DAEMON, attrs))

    def stop_daemon(self, state: str) -> None:
        self.request(CMD_DEL_DAEMON, nla(ATTR_DAEMON, nla(DAEMON_STATE, _U32.pack(DAEMON_STATES[state]))))
