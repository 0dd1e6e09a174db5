# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink adapter: the ONLY file of the collection that imports pyroute2.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Dumps the kernel's IPVS table (or reads one service) into canonical records and applies
planned ops, all through the collection's own encoder (``_ipvs_genl``, standard library
only). pyroute2 is kept as an independent second encoder and decoder that the lab tests
compare ours with (``dump_pyroute2``, ``apply_pyroute2``); no module imports it. It hides
pyroute2's traps: ``service("update")`` sends a DELETE (we use ``set``); the flags mask
must carry every wanted flag or persistence is cleared; an IPv6 persistence netmask is a
prefix length sent in the IPv4-netmask attribute; ``IPVSDest.from_message`` reports
fwd_method 3 whatever the kernel says and leaks memory (we read raw attributes);
``tun_port`` is big-endian on the wire but typed uint16.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils._netns import enter
from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_genl as genl
from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_plan as P
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    FAMILIES,
    FAMILY_NAMES,
    FORWARDING,
    FORWARDING_NAMES,
    PROTOCOL_NAMES,
    PROTOCOLS,
    SVC_F_ONEPACKET,
    SVC_F_PERSISTENT,
    TUNNEL_CHECKSUM_NAMES,
    TUNNEL_CHECKSUMS,
    TUNNEL_TYPE_NAMES,
    TUNNEL_TYPES,
    kernel_input,
    normalize_real_server,
    normalize_service,
    real_server_label,
    sched_flag_bits,
    sched_flag_names,
    service_label,
    sort_table,
)


def has_pyroute2() -> bool:
    """Whether pyroute2 can be imported (it costs ~0.7 s to import on a small machine: only
    the cross-checks that use it import it, and only when they do)."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    return importlib.util.find_spec("pyroute2") is not None


_FWD_MASK = 0x7
_STATS = ("conns", "inpkts", "outpkts", "inbytes", "outbytes")
_RATES = ("cps", "inpps", "outpps", "inbps", "outbps")


class IPVSKernelError(RuntimeError):
    """The kernel refused an operation; ``obj`` names the service or real server."""

    def __init__(self, obj: str, message: str, applied: int = 0) -> None:
        super().__init__("%s: %s" % (obj, message))
        self.obj = obj
        self.applied = applied


def enter_namespace(name: str) -> None:
    """Move this process into network namespace ``name`` (/run/netns/NAME) for all later I/O."""
    problem = enter(name)
    if problem:
        raise IPVSKernelError("namespace", problem)


Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]


def _modprobe(module: str, run: Runner | None) -> str | None:
    """Load a kernel module if it is not loaded; returns an error text, or None when loaded."""
    if os.path.isdir("/sys/module/%s" % module):
        return None
    if run is None:
        return "not loaded, and no way to run modprobe"
    for path in ("/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe"):
        if os.path.exists(path):
            rc, out, err = run([path, module])
            if rc == 0:
                return None
            return (err or out).strip() or "modprobe %s failed with rc %d" % (module, rc)
    return "modprobe not found"


def _v6_plen_as_ip4(plen: int) -> str:
    # The kernel keeps an IPv6 persistence prefix length in the 32-bit netmask attribute, host order.
    return socket.inet_ntoa(struct.pack("=I", plen))


def _ip4_as_v6_plen(text: str) -> int:
    return struct.unpack("=I", socket.inet_aton(text))[0]


# The read buffer of a single-object adapter: room for a 32 KiB dump part and then some.
SINGLE_READ_SIZE = 64 * 1024

# What a kernel that has not loaded ip_vs yet holds: an empty table with the default timeouts.
KERNEL_DEFAULT_TIMEOUTS = {"tcp": 900, "tcpfin": 120, "udp": 300}


def ip_vs_loaded() -> bool:
    return os.path.isdir("/sys/module/ip_vs")


class IPVSAdapter:
    """One generic-netlink IPVS socket in the current network namespace.

    Reading never loads ip_vs (resolving the IPVS family would): a kernel without it holds an
    empty table, so check mode and gathering leave a fresh host as it was.  The first change
    loads it (modprobe, else the kernel's family autoload).
    """

    def __init__(self, run: Runner | None = None, bulk: bool = True) -> None:
        """``run(argv) -> (rc, stdout, stderr)`` runs modprobe (AnsibleModule.run_command).

        ``bulk=False``: the caller reads and changes single objects only, so the socket's read
        buffer is small (a dump part is at most 32 KiB; a large buffer costs page faults).
        """
        self.run = run
        self._readsize = (1 << 20) if bulk else SINGLE_READ_SIZE
        self._pyroute2: t.Any = None
        self._genl: t.Any = None
        if ip_vs_loaded():
            self._genl = self._open()

    def _open(self) -> t.Any:
        try:
            return genl.IPVSGenl(readsize=self._readsize)
        except OSError:  # family not registered: the ip_vs module is not loaded yet
            err = _modprobe("ip_vs", self.run)
            try:
                return genl.IPVSGenl(readsize=self._readsize)
            except OSError as exc:
                raise IPVSKernelError("kernel", "IPVS is not available: %s%s"
                                      % (exc.strerror, "; modprobe ip_vs: %s" % err if err else "")) from None

    @property
    def genl(self) -> t.Any:
        """The bulk socket, opened (ip_vs loaded) on first use."""
        if self._genl is None:
            self._genl = self._open()
        return self._genl

    def _unloaded(self) -> bool:
        return self._genl is None and not ip_vs_loaded()

    def close(self) -> None:
        if self._genl is not None:
            self._genl.close()
        if self._pyroute2 is not None:
            self._pyroute2.close()

    @property
    def sock(self) -> t.Any:
        """The pyroute2 IPVS socket, opened on first use."""
        if self._pyroute2 is None:
            from pyroute2 import IPVS  # pylint: disable=import-outside-toplevel
            self._pyroute2 = IPVS()
        return self._pyroute2

    def __enter__(self) -> "IPVSAdapter":
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.close()

    # ---------------------------------------------------------------- reading
    def dump(self, stats: bool = False) -> list[dict[str, t.Any]]:
        """The whole table, canonical and sorted, real servers included (counters when ``stats``)."""
        if self._unloaded():
            return []
        return sort_table(self.genl.dump(stats))

    def service(self, svc: t.Mapping[str, t.Any], stats: bool = False) -> dict[str, t.Any] | None:
        """One service (found by the key fields of ``svc``) with its real servers, canonical and
        sorted; None when the kernel has no such service.

        Two requests, whatever the size of the table: a get of that service and a dump of its
        real servers only (never a whole-table dump).
        """
        if self._unloaded():
            return None
        key = genl.service_key_attrs(svc)
        found = self.genl.get_service(key, stats)
        if found is None:
            return None
        found["real_servers"] = self.genl.get_dests(key, stats)
        return sort_table([found])[0]

    def dump_pyroute2(self, stats: bool = False) -> list[dict[str, t.Any]]:
        """The same table read through pyroute2 (a cross-check of the struct decoder)."""
        table = []
        for msg in self.sock.service("dump"):
            nla = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
            svc = self._service_from_nla(nla)
            dests = self.sock.dest("dump", service=self._service_request(svc, key_only=True))
            svc["real_servers"] = [self._dest_from_nla(d.get_attr("IPVS_CMD_ATTR_DEST"), svc, stats) for d in dests]
            if stats:
                svc["stats"], svc["rates"] = _counters(nla.get_attr("IPVS_SVC_ATTR_STATS64"))
            table.append(svc)
        return sort_table(table)

    @staticmethod
    def _service_from_nla(nla: t.Any) -> dict[str, t.Any]:
        family = FAMILY_NAMES[nla.get_attr("IPVS_SVC_ATTR_AF")]
        flags = nla.get_attr("IPVS_SVC_ATTR_FLAGS")["flags"]
        sched = nla.get_attr("IPVS_SVC_ATTR_SCHED_NAME")
        netmask = nla.get_attr("IPVS_SVC_ATTR_NETMASK")
        raw: dict[str, t.Any] = {"family": family, "scheduler": sched}
        fwmark = nla.get_attr("IPVS_SVC_ATTR_FWMARK")
        if fwmark:
            raw["fwmark"] = fwmark
        else:
            raw.update(protocol=PROTOCOL_NAMES[nla.get_attr("IPVS_SVC_ATTR_PROTOCOL")],
                       address=nla.get_attr("IPVS_SVC_ATTR_ADDR"), port=nla.get_attr("IPVS_SVC_ATTR_PORT"))
        if flags & SVC_F_PERSISTENT:
            raw["persistence_timeout"] = nla.get_attr("IPVS_SVC_ATTR_TIMEOUT")
            raw["persistence_netmask"] = _ip4_as_v6_plen(netmask) if family == "ipv6" else netmask
        raw["persistence_engine"] = nla.get_attr("IPVS_SVC_ATTR_PE_NAME") or None
        raw["one_packet"] = bool(flags & SVC_F_ONEPACKET)
        raw["scheduler_flags"] = sched_flag_names(sched, flags)
        with kernel_input():
            return normalize_service(raw, service_label_raw(raw))

    @staticmethod
    def _dest_from_nla(nla: t.Any, svc: dict[str, t.Any], stats: bool) -> dict[str, t.Any]:
        fwd = FORWARDING_NAMES[nla.get_attr("IPVS_DEST_ATTR_FWD_METHOD") & _FWD_MASK]
        raw: dict[str, t.Any] = {
            "address": nla.get_attr("IPVS_DEST_ATTR_ADDR"),
            "port": nla.get_attr("IPVS_DEST_ATTR_PORT"),
            "forwarding": fwd,
            "weight": nla.get_attr("IPVS_DEST_ATTR_WEIGHT"),
            "upper_threshold": nla.get_attr("IPVS_DEST_ATTR_U_THRESH"),
            "lower_threshold": nla.get_attr("IPVS_DEST_ATTR_L_THRESH"),
        }
        if fwd == "tunnel":
            tun_type = TUNNEL_TYPE_NAMES.get(nla.get_attr("IPVS_DEST_ATTR_TUN_TYPE") or 0, "ipip")
            raw["tunnel_type"] = tun_type
            if tun_type == "gue":
                raw["tunnel_port"] = socket.ntohs(nla.get_attr("IPVS_DEST_ATTR_TUN_PORT") or 0)
            if tun_type != "ipip":
                raw["tunnel_checksum"] = TUNNEL_CHECKSUM_NAMES.get(nla.get_attr("IPVS_DEST_ATTR_TUN_FLAGS") or 0, "nocsum")
        rs = normalize_real_server(raw, svc, "%s real server %s" % (service_label(svc), raw["address"]), kernel=True)
        if stats:
            rs["active_connections"] = nla.get_attr("IPVS_DEST_ATTR_ACTIVE_CONNS")
            rs["inactive_connections"] = nla.get_attr("IPVS_DEST_ATTR_INACT_CONNS")
            rs["persistent_connections"] = nla.get_attr("IPVS_DEST_ATTR_PERSIST_CONNS")
            rs["stats"], rs["rates"] = _counters(nla.get_attr("IPVS_DEST_ATTR_STATS64"))
        return rs

    # ---------------------------------------------------------------- writing
    @staticmethod
    def _service_request(svc: t.Mapping[str, t.Any], key_only: bool = False) -> t.Any:
        from pyroute2 import IPVSService  # pylint: disable=import-outside-toplevel
        fields: dict[str, t.Any] = {"af": FAMILIES[svc["family"]]}
        if svc.get("fwmark") is not None:
            fields.update(fwmark=svc["fwmark"], protocol=PROTOCOLS["tcp"])
        else:
            fields.update(protocol=PROTOCOLS[svc["protocol"]], addr=svc["address"], port=svc["port"])
        if not key_only:
            flags = sched_flag_bits(svc["scheduler"], svc["scheduler_flags"])
            if svc["persistence_timeout"]:
                flags |= SVC_F_PERSISTENT
            if svc["one_packet"]:
                flags |= SVC_F_ONEPACKET
            netmask = svc["persistence_netmask"]
            fields.update(
                sched_name=svc["scheduler"],
                # The mask covers every bit, so the kernel ends with exactly these flags.
                flags={"flags": flags, "mask": 0xFFFFFFFF},
                timeout=svc["persistence_timeout"],
                netmask=_v6_plen_as_ip4(netmask) if svc["family"] == "ipv6" else netmask,
            )
            if svc.get("persistence_engine"):
                fields["pe_name"] = svc["persistence_engine"]
        return IPVSService(**fields)

    @staticmethod
    def _dest_request(rs: t.Mapping[str, t.Any]) -> t.Any:
        from pyroute2 import IPVSDest  # pylint: disable=import-outside-toplevel
        tunnel = rs["forwarding"] == "tunnel"
        return IPVSDest(
            addr=rs["address"],
            port=rs["port"],
            addr_family=FAMILIES["ipv6" if ":" in rs["address"] else "ipv4"],
            fwd_method=FORWARDING[rs["forwarding"]],
            weight=rs["weight"],
            u_thresh=rs["upper_threshold"],
            l_thresh=rs["lower_threshold"],
            tun_type=TUNNEL_TYPES[rs["tunnel_type"]] if tunnel else 0,
            # Typed uint16 by pyroute2 but read as __be16 by the kernel.
            tun_port=socket.htons(rs["tunnel_port"] or 0) if tunnel else 0,
            tun_flags=TUNNEL_CHECKSUMS[rs["tunnel_checksum"] or "nocsum"] if tunnel else 0,
        )

    def _load_modules(self, ops: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, str]:
        """modprobe the schedulers and persistence engines the ops need; returns failures by name."""
        failures = {}
        for op in ops:
            if op["action"] not in (P.ADD_SERVICE, P.SET_SERVICE):
                continue
            for module in ("ip_vs_%s" % op["service"]["scheduler"],
                           "ip_vs_pe_%s" % op["service"]["persistence_engine"] if op["service"].get("persistence_engine") else None):
                if module and module not in failures:
                    err = _modprobe(module, self.run)
                    if err:
                        failures[module] = err
        return failures

    def apply(self, ops: t.Sequence[t.Mapping[str, t.Any]]) -> int:
        """Apply ops one by one, each an acknowledged request; on a refusal raise IPVSKernelError
        naming the object (``applied``: how many ops the kernel had taken before)."""
        failures = self._load_modules(ops)
        for done, op in enumerate(ops):
            cmd, attrs = op_request(op)
            try:
                self.genl.request(cmd, attrs)
            except OSError as exc:
                raise IPVSKernelError(op_label(op), _refusal(op, exc.errno, failures), applied=done) from None
        return len(ops)

    def apply_pyroute2(self, ops: t.Sequence[t.Mapping[str, t.Any]]) -> int:
        """``apply`` through pyroute2 (the lab tests' cross-check of the encoder)."""
        from pyroute2.netlink.exceptions import NetlinkError  # pylint: disable=import-outside-toplevel
        failures = self._load_modules(ops)
        for done, op in enumerate(ops):
            action, svc = op["action"], op["service"]
            label = service_label(svc)
            try:
                if action == P.ADD_SERVICE:
                    self.sock.service("add", service=self._service_request(svc))
                elif action == P.SET_SERVICE:
                    self.sock.service("set", service=self._service_request(svc))
                elif action == P.DEL_SERVICE:
                    self.sock.service("del", service=self._service_request(svc, key_only=True))
                else:
                    label = "%s real server %s" % (label, real_server_label(op["real_server"]))
                    verb = {P.ADD_REAL_SERVER: "add", P.SET_REAL_SERVER: "set", P.DEL_REAL_SERVER: "del"}[action]
                    self.sock.dest(verb, service=self._service_request(svc, key_only=True), dest=self._dest_request(op["real_server"]))
            except NetlinkError as exc:
                raise IPVSKernelError(label, _refusal(op, exc.code, failures), applied=done) from None
        return len(ops)

    def apply_batch(self, ops: t.Sequence[t.Mapping[str, t.Any]], have: t.Sequence[t.Mapping[str, t.Any]]) -> None:
        """Apply ops as a few batched requests, all or nothing.

        If the kernel refuses any op, every op it accepted is undone (inverse ops, newest
        first) so the table is ``have`` again, and IPVSKernelError names the first refused
        object.
        """
        if not ops:
            return
        modules = self._load_modules(ops)
        failures = self.genl.batch([op_request(op) for op in ops])
        if not failures:
            return
        failed = {index for index, _code in failures}
        done = [op for i, op in enumerate(ops) if i not in failed]
        undo, undo_failures = self.undo(done, have)
        index, code = failures[0]
        op = ops[index]
        detail = "%s refused by the kernel: %s" % (op["action"], os.strerror(code))
        missing = [m for m in ("ip_vs_%s" % op["service"]["scheduler"], "ip_vs_pe_%s" % op["service"].get("persistence_engine"))
                   if m in modules and op["action"] in (P.ADD_SERVICE, P.SET_SERVICE)]
        if missing:
            detail += " (%s not available: %s)" % (missing[0], modules[missing[0]])
        detail += "; %d of %d operations had been applied and were rolled back" % (len(done), len(ops))
        if undo_failures:
            detail += "; ROLLBACK INCOMPLETE: %s" % ", ".join(
                "%s (%s)" % (op_label(undo[i]), os.strerror(c)) for i, c in undo_failures)
        raise IPVSKernelError(op_label(op), detail, applied=0)

    def undo(self, done: t.Sequence[t.Mapping[str, t.Any]], have: t.Sequence[t.Mapping[str, t.Any]]) -> tuple[list, list]:
        """Revert ``done`` (applied to ``have``); returns (undo ops, (index, errno) of those refused)."""
        undo = P.inverse_ops(done, have)
        return undo, (self.genl.batch([op_request(op) for op in undo]) if undo else [])

    # ---------------------------------------------------------------- config
    def timeouts(self) -> dict[str, int]:
        if self._unloaded():
            return dict(KERNEL_DEFAULT_TIMEOUTS)
        return self.genl.get_timeouts()

    def set_timeouts(self, tcp: int, tcpfin: int, udp: int) -> None:
        self.genl.set_timeouts(tcp, tcpfin, udp)

    def daemons(self) -> list[dict[str, t.Any]]:
        if self._unloaded():
            return []
        return self.genl.get_daemons()

    def start_daemon(self, daemon: t.Mapping[str, t.Any]) -> None:
        try:
            self.genl.start_daemon(daemon)
        except OSError as exc:
            raise IPVSKernelError("sync daemon %s" % daemon["state"], "refused by the kernel: %s" % exc.strerror) from None

    def stop_daemon(self, state: str) -> None:
        try:
            self.genl.stop_daemon(state)
        except OSError as exc:
            raise IPVSKernelError("sync daemon %s" % state, "refused by the kernel: %s" % exc.strerror) from None


def op_request(op: t.Mapping[str, t.Any]) -> tuple[int, bytes]:
    """A planned op as one generic-netlink request (command, attributes)."""
    action, svc = op["action"], op["service"]
    if action in (P.ADD_SERVICE, P.SET_SERVICE):
        cmd = genl.CMD_NEW_SERVICE if action == P.ADD_SERVICE else genl.CMD_SET_SERVICE
        return cmd, genl.nla(genl.ATTR_SERVICE, genl.service_attrs(svc))
    key = genl.nla(genl.ATTR_SERVICE, genl.service_key_attrs(svc))
    if action == P.DEL_SERVICE:
        return genl.CMD_DEL_SERVICE, key
    rs = op["real_server"]
    if action == P.DEL_REAL_SERVER:
        return genl.CMD_DEL_DEST, key + genl.nla(genl.ATTR_DEST, genl.dest_attrs(rs, key_only=True))
    cmd = genl.CMD_NEW_DEST if action == P.ADD_REAL_SERVER else genl.CMD_SET_DEST
    return cmd, key + genl.nla(genl.ATTR_DEST, genl.dest_attrs(rs))


def _refusal(op: t.Mapping[str, t.Any], code: int, failures: t.Mapping[str, str]) -> str:
    """Why the kernel refused ``op`` (errno ``code``), with the module that could not be loaded."""
    detail = "%s refused by the kernel: %s" % (op["action"], os.strerror(code) if code else "unknown error")
    if op["action"] in (P.ADD_SERVICE, P.SET_SERVICE):
        svc = op["service"]
        missing = [m for m in ("ip_vs_%s" % svc["scheduler"], "ip_vs_pe_%s" % svc.get("persistence_engine")) if m in failures]
        if missing:
            detail += " (%s not available: %s)" % (missing[0], failures[missing[0]])
    return detail


def op_label(op: t.Mapping[str, t.Any]) -> str:
    label = service_label(op["service"])
    if "real_server" in op:
        label += " real server %s" % real_server_label(op["real_server"])
    return label


def service_label_raw(raw: t.Mapping[str, t.Any]) -> str:
    if raw.get("fwmark"):
        return "kernel fwmark %s" % raw["fwmark"]
    return "kernel %s %s:%s" % (raw.get("protocol"), raw.get("address"), raw.get("port"))


def _counters(nla: t.Any) -> tuple[dict[str, int], dict[str, int]]:
    if nla is None:
        return dict.fromkeys(_STATS, 0), dict.fromkeys(_RATES, 0)
    get = nla.get_attr
    return ({k: get("IPVS_STATS_ATTR_%s" % k.upper()) or 0 for k in _STATS},
            {k: get("IPVS_STATS_ATTR_%s" % k.upper()) or 0 for k in _RATES})


def _conn_addr(text: str) -> str:
    if ":" in text:
        return str(ipaddress.IPv6Address(text))
    return str(ipaddress.IPv4Address(int(text, 16)))


def connections(path: str = "/proc/net/ip_vs_conn") -> list[dict[str, t.Any]]:
    """The connection table (``ipvsadm -Lnc``), from the current namespace's /proc."""
    out = []
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) < 9:
            continue
        out.append({
            "protocol": f[0].lower(),
            "client": {"address": _conn_addr(f[1]), "port": int(f[2], 16)},
            "virtual": {"address": _conn_addr(f[3]), "port": int(f[4], 16)},
            "real_server": {"address": _conn_addr(f[5]), "port": int(f[6], 16)},
            "state": f[7],
            "expires": int(f[8]),
            "persistence_engine": f[9] if len(f) > 9 else None,
            "persistence_data": f[10] if len(f) > 10 else None,
        })
    return out
