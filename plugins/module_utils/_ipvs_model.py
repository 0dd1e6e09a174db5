# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canonical IPVS records: shape, kernel defaults, identity keys, validation.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Pure module: no I/O, no Ansible imports. Every record the collection handles (module
parameters, a netlink dump, a parsed ``ipvsadm-save`` text) passes through
``normalize_service`` / ``normalize_real_server`` so that equal tables compare equal and
a gathered table can be fed back as configuration unchanged.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import typing as t

# Kernel flag bits (include/uapi/linux/ip_vs.h).
SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008
SVC_F_SCHED2 = 0x0010
SVC_F_SCHED3 = 0x0020

PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
FAMILIES = {"ipv4": 2, "ipv6": 10}
FAMILY_NAMES = {v: k for k, v in FAMILIES.items()}

# Every scheduler the kernel has ever offered (twos is newer than some kernels).
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos")
DEFAULT_SCHEDULER = "wlc"
PERSISTENCE_ENGINES = ("sip",)
# ipvsadm's IPVS_SVC_PERSISTENT_TIMEOUT and MAX_TIMEOUT.
DEFAULT_PERSISTENCE_TIMEOUT = 360
MAX_PERSISTENCE_TIMEOUT = 86400 * 31

# Scheduler flag names by scheduler, as ipvsadm spells them, and their bits.
_GENERIC_FLAGS = {"flag-1": SVC_F_SCHED1, "flag-2": SVC_F_SCHED2, "flag-3": SVC_F_SCHED3}
_SCHED_FLAG_NAMES = {
    "sh": {"sh-fallback": SVC_F_SCHED1, "sh-port": SVC_F_SCHED2},
    "mh": {"mh-fallback": SVC_F_SCHED1, "mh-port": SVC_F_SCHED2},
}
ALL_SCHED_FLAGS = tuple(_GENERIC_FLAGS) + tuple(n for m in _SCHED_FLAG_NAMES.values() for n in m)

# Forwarding methods (IP_VS_CONN_F_*), tunnel types and tunnel checksum flags.
FORWARDING = {"nat": 0, "tunnel": 2, "dr": 3}
FORWARDING_NAMES = {0: "nat", 1: "dr", 2: "tunnel", 3: "dr"}  # 1 = local node, shown as -g
FORWARDING_ALIASES = {"masquerading": "nat", "masq": "nat", "route": "dr", "direct": "dr", "gatewaying": "dr",
                      "ipip": "tunnel", "tun": "tunnel"}
TUNNEL_TYPES = {"ipip": 0, "gue": 1, "gre": 2}
TUNNEL_TYPE_NAMES = {v: k for k, v in TUNNEL_TYPES.items()}
TUNNEL_CHECKSUMS = {"nocsum": 0, "csum": 1, "remcsum": 2}
TUNNEL_CHECKSUM_NAMES = {v: k for k, v in TUNNEL_CHECKSUMS.items()}
# Which checksum options each tunnel type accepts (ipvsadm's tunnel_types_v_options).
_TUNNEL_CHECKSUM_ALLOWED = {"ipip": ("nocsum",), "gue": ("nocsum", "csum", "remcsum"), "gre": ("nocsum", "csum")}

MAX_WEIGHT = 65535
MAX_THRESHOLD = 2 ** 31 - 1
MAX_FWMARK = 2 ** 32 - 1

SERVICE_FIELDS = ("family", "protocol", "address", "port", "fwmark", "scheduler", "scheduler_flags",
                  "persistence_timeout", "persistence_netmask", "persistence_engine", "one_packet")
REAL_SERVER_FIELDS = ("address", "port", "forwarding", "weight", "upper_threshold", "lower_threshold",
                      "tunnel_type", "tunnel_port", "tunnel_checksum")


# Ansible's own boolean spellings (ansible.module_utils.parsing.convert_bool), nothing else.
BOOLEANS_TRUE = frozenset(("y", "yes", "on", "1", "true", "t"))
BOOLEANS_FALSE = frozenset(("n", "no", "off", "0", "false", "f"))
# Longest value echoed back in a message.
SHOW_MAX = 80
_INT_RE = re.compile(r"[+-]?[0-9]{1,20}\Z")

# Warnings about input the kernel holds but the model would not choose for new input
# (weights above 65535, port-0 services without persistence, ...). Modules drain it with
# ``take_warnings()`` and pass each to ``module.warn``.
_WARNINGS: list[str] = []
MAX_WARNINGS = 20


_STRICT: list[bool | None] = [True]
# Validated real servers by _memo_key, shared by the services of one normalize_table call.
_RS_MEMO: list[dict | None] = [None]


def warn(field: str, message: str) -> None:
    """Record a warning; inside a strict ``normalize_table`` it is an error instead."""
    if _STRICT[0]:
        raise IPVSValidationError(field, message)
    if _STRICT[0] is None:  # reading the kernel: what it holds is what it holds
        return
    _WARNINGS.append("%s: %s" % (field, message) if field else message)


class _Mode:
    def __init__(self, mode: bool | None) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self.saved = _STRICT[0]
        _STRICT[0] = self.mode

    def __exit__(self, *exc: t.Any) -> None:
        _STRICT[0] = self.saved


def kernel_input() -> _Mode:
    """Context: records read from the kernel; the model's warnings for new input are dropped."""
    return _Mode(None)


def lenient() -> _Mode:
    """Context: what the kernel can hold is accepted with a warning (the modules' input)."""
    return _Mode(False)


def take_warnings() -> list[str]:
    """The collected warnings (at most MAX_WARNINGS, then a count), and reset."""
    out = list(dict.fromkeys(_WARNINGS))
    del _WARNINGS[:]
    if len(out) > MAX_WARNINGS:
        out = out[:MAX_WARNINGS] + ["... and %d more warnings like these" % (len(out) - MAX_WARNINGS)]
    return out


def show(raw: t.Any) -> str:
    """``repr(raw)`` cut to SHOW_MAX characters, for messages."""
    try:
        text = repr(raw) if not isinstance(raw, str) or len(raw) <= SHOW_MAX else repr(raw[:SHOW_MAX])
    except Exception:  # a hostile __repr__
        text = "<%s>" % type(raw).__name__
    if len(text) > SHOW_MAX:
        text = text[:SHOW_MAX] + "...(%d characters)" % len(text)
    elif isinstance(raw, str) and len(raw) > SHOW_MAX:
        text += "...(%d characters)" % len(raw)
    return text


class IPVSValidationError(ValueError):
    """Bad input. ``field`` is the dotted path of the offending option."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("%s: %s" % (field, message) if field else message)
        self.field = field


def _path(prefix: str, name: str) -> str:
    return "%s.%s" % (prefix, name) if prefix else name


def _int(raw: t.Any, field: str, low: int, high: int) -> int:
    """An integer (or a string of ASCII decimal digits) within low..high; anything else names ``field``."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise IPVSValidationError(field, "%s is not an integer" % show(raw))
    if isinstance(raw, str):
        text = raw.strip()
        if not _INT_RE.match(text):
            raise IPVSValidationError(field, "%s is not an integer" % show(raw))
        value = int(text, 10)
    else:
        value = raw
    if not low <= value <= high:
        raise IPVSValidationError(field, "%s is out of range %d..%d" % (show(value), low, high))
    return value


def _bool(raw: t.Any, field: str) -> bool:
    """Strict boolean: True/False, or one of Ansible's boolean strings (or 0/1)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in BOOLEANS_TRUE:
            return True
        if text in BOOLEANS_FALSE:
            return False
    raise IPVSValidationError(field, "%s is not a boolean (true/false, yes/no, on/off, 1/0)" % show(raw))


def parse_bool(raw: t.Any, field: str) -> bool:
    """Public strict boolean (see ``_bool``)."""
    return _bool(raw, field)


def _given(value: t.Any) -> bool:
    """An option counts as set unless it is None or the empty string."""
    return not (value is None or (isinstance(value, str) and value == ""))


def parse_address(raw: t.Any, field: str) -> str:
    """Canonical text of an IPv4 or IPv6 address (brackets allowed) that a service or real server can use."""
    if not isinstance(raw, str):
        raise IPVSValidationError(field, "%s is not an IPv4 or IPv6 address (a string)" % show(raw))
    text = raw.strip()
    if len(text) > 64:
        raise IPVSValidationError(field, "%s is not an IPv4 or IPv6 address" % show(raw))
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    # inet_pton/inet_ntop: strict, canonical, and far cheaper than ipaddress for big tables.
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            packed = socket.inet_pton(family, text)
        except (OSError, ValueError):
            continue
        if (family == socket.AF_INET and packed in (b"\0\0\0\0", b"\xff\xff\xff\xff")) or packed[0] >= (224 if len(packed) == 4 else 255) \
                or (family == socket.AF_INET6 and packed == bytes(16)):
            raise IPVSValidationError(field, "%s is not a unicast address" % socket.inet_ntop(family, packed))
        return socket.inet_ntop(family, packed)
    raise IPVSValidationError(field, "%s is not an IPv4 or IPv6 address" % show(raw))


def family_of(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def normalize_netmask(raw: t.Any, family: str, field: str) -> str | int:
    """IPv4: a dotted mask or a prefix length, returned dotted. IPv6: a prefix length 1..128."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise IPVSValidationError(field, "%s is not a netmask or prefix length" % show(raw))
    text = str(raw).strip()
    text = text[1:] if text.startswith("/") else text
    if family == "ipv6":
        return _int(text, field, 1, 128)
    if _INT_RE.match(text):
        return str(ipaddress.IPv4Network("0.0.0.0/%d" % _int(text, field, 0, 32)).netmask)
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise IPVSValidationError(field, "%s is not an IPv4 netmask or prefix length" % show(raw)) from None


def default_netmask(family: str) -> str | int:
    return 128 if family == "ipv6" else "255.255.255.255"


def sched_flag_bits(scheduler: str, names: t.Iterable[str], field: str = "scheduler_flags") -> int:
    """Map flag names to kernel bits, refusing a flag that does not belong to the scheduler."""
    allowed = dict(_GENERIC_FLAGS)
    allowed.update(_SCHED_FLAG_NAMES.get(scheduler, {}))
    bits = 0
    for name in names:
        if name not in allowed:
            if name in ALL_SCHED_FLAGS:
                raise IPVSValidationError(field, "flag %r does not apply to scheduler %r" % (name, scheduler))
            raise IPVSValidationError(field, "unknown scheduler flag %s (known: %s)" % (show(name), ", ".join(ALL_SCHED_FLAGS)))
        bits |= allowed[name]
    return bits


def sched_flag_names(scheduler: str, bits: int) -> list[str]:
    """Kernel bits to the names ipvsadm prints for this scheduler (canonical spelling)."""
    names = []
    specific = {bit: name for name, bit in _SCHED_FLAG_NAMES.get(scheduler, {}).items()}
    for name, bit in _GENERIC_FLAGS.items():
        if bits & bit:
            names.append(specific.get(bit, name))
    return names


def _choice(raw: t.Any, field: str, choices: t.Iterable[str], aliases: dict[str, str] | None = None) -> str:
    choices = tuple(choices)
    if not isinstance(raw, str):
        raise IPVSValidationError(field, "%s is not one of %s (a string)" % (show(raw), ", ".join(choices)))
    text = raw.strip().lower()
    if aliases and text in aliases:
        text = aliases[text]
    if text not in choices:
        raise IPVSValidationError(field, "%s is not one of %s" % (show(raw), ", ".join(choices)))
    return text


def _opt_choice(raw: t.Any, default: str, field: str, choices: t.Iterable[str], aliases: dict[str, str] | None = None) -> str:
    return _choice(raw if _given(raw) else default, field, choices, aliases)


def _flag_list(raw: t.Any, field: str) -> list[str]:
    """scheduler_flags: a list of names or a comma-separated string; anything else is an error."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        items: list[t.Any] = [f for f in raw.split(",") if f.strip()]
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise IPVSValidationError(field, "%s is not a list of flag names" % show(raw))
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise IPVSValidationError("%s[%d]" % (field, i), "%s is not a flag name" % show(item))
        out.append(item.strip().lower())
    return out


def normalize_service(raw: t.Mapping[str, t.Any], path: str = "", with_real_servers: bool = True) -> dict[str, t.Any]:
    """Validate a service and return it in canonical shape (defaults filled in).

    A ``real_servers`` key, when present and not None, is normalized too (sorted by key,
    duplicates refused); when absent or None the real servers are left unmanaged.
    """
    if not isinstance(raw, t.Mapping):
        raise IPVSValidationError(path, "must be a dictionary")
    known = set(SERVICE_FIELDS) | {"real_servers", "stats", "rates"}
    for key in raw:
        if key not in known:
            raise IPVSValidationError(_path(path, show(key) if not isinstance(key, str) else key[:SHOW_MAX]), "unknown option")
    get = raw.get
    fwmark = get("fwmark")
    address = get("address")
    svc: dict[str, t.Any] = {}
    if _given(fwmark):
        fwmark = _int(fwmark, _path(path, "fwmark"), 1, MAX_FWMARK)
        if _given(address):
            raise IPVSValidationError(_path(path, "fwmark"), "fwmark and address are mutually exclusive")
        if _given(get("port")):
            raise IPVSValidationError(_path(path, "port"), "a fwmark service has no port")
        if _given(get("protocol")) and get("protocol") != "tcp":
            raise IPVSValidationError(_path(path, "protocol"), "a fwmark service has no protocol (it matches marked packets of any protocol)")
        family = _opt_choice(get("family"), "ipv4", _path(path, "family"), FAMILIES)
        svc.update(family=family, protocol=None, address=None, port=None, fwmark=fwmark)
    else:
        if not _given(address):
            raise IPVSValidationError(_path(path, "address"), "a service needs an address (with protocol and port) or a fwmark")
        addr = parse_address(address, _path(path, "address"))
        family = family_of(addr)
        if _given(get("family")) and _choice(get("family"), _path(path, "family"), FAMILIES) != family:
            raise IPVSValidationError(_path(path, "family"), "%s does not match the address %s" % (show(get("family")), addr))
        if not _given(get("port")):
            raise IPVSValidationError(_path(path, "port"), "a service with an address needs a port (0 for all ports, persistent only)")
        svc.update(family=family, protocol=_opt_choice(get("protocol"), "tcp", _path(path, "protocol"), PROTOCOLS),
                   address=addr, port=_int(get("port"), _path(path, "port"), 0, 65535), fwmark=None)

    scheduler = _opt_choice(get("scheduler"), DEFAULT_SCHEDULER, _path(path, "scheduler"), SCHEDULERS)
    flags_in = _flag_list(get("scheduler_flags"), _path(path, "scheduler_flags"))
    bits = sched_flag_bits(scheduler, flags_in, _path(path, "scheduler_flags"))
    svc["scheduler"] = scheduler
    svc["scheduler_flags"] = sched_flag_names(scheduler, bits)

    timeout_raw = get("persistence_timeout")
    timeout = 0 if not _given(timeout_raw) else _int(timeout_raw, _path(path, "persistence_timeout"), 0,
                                                     MAX_PERSISTENCE_TIMEOUT if _STRICT[0] else 2 ** 32 - 1)
    if timeout > MAX_PERSISTENCE_TIMEOUT:
        # The kernel holds any 32-bit timeout; ipvsadm's -p caps new ones at 31 days.
        warn(_path(path, "persistence_timeout"), "%d is above ipvsadm's limit %d (31 days); the kernel keeps it"
             % (timeout, MAX_PERSISTENCE_TIMEOUT))
    svc["persistence_timeout"] = timeout
    netmask_raw = get("persistence_netmask")
    if not _given(netmask_raw):
        svc["persistence_netmask"] = default_netmask(family)
    else:
        netmask = normalize_netmask(netmask_raw, family, _path(path, "persistence_netmask"))
        if not timeout and netmask != default_netmask(family):
            raise IPVSValidationError(_path(path, "persistence_netmask"),
                                      "only applies to a persistent service: set persistence_timeout too")
        svc["persistence_netmask"] = netmask
    engine = get("persistence_engine")
    if not _given(engine):
        svc["persistence_engine"] = None
    else:
        # Only has an effect with persistence, but the kernel keeps it either way.
        svc["persistence_engine"] = _choice(engine, _path(path, "persistence_engine"), PERSISTENCE_ENGINES)
    svc["one_packet"] = _bool(get("one_packet"), _path(path, "one_packet")) if _given(get("one_packet")) else False
    # The kernel holds both of these (and a gathered table may carry them): warn, do not refuse.
    if svc["one_packet"] and svc["fwmark"] is None and svc["protocol"] != "udp":
        warn(_path(path, "one_packet"), "one-packet scheduling is only for UDP (or fwmark) services")
    if svc["fwmark"] is None and svc["port"] == 0 and not timeout:
        warn(_path(path, "port"), "port 0 (all ports) needs a persistent service: set persistence_timeout")

    if with_real_servers and get("real_servers") is not None:
        svc["real_servers"] = normalize_real_servers(get("real_servers"), svc, _path(path, "real_servers"))
    return svc


def normalize_real_servers(raw: t.Any, svc: t.Mapping[str, t.Any], path: str) -> list[dict[str, t.Any]]:
    if not isinstance(raw, (list, tuple)):
        raise IPVSValidationError(path, "must be a list")
    out: dict[tuple, dict[str, t.Any]] = {}
    # Real servers of one service mostly differ by address only: the rest of a record is
    # validated once per distinct value (same result, same errors; never when it warned).
    memo = _RS_MEMO[0] if _RS_MEMO[0] is not None else {}
    shape = (svc["family"], svc["fwmark"] is None, svc["port"])
    for i, item in enumerate(raw):
        item_path = "%s[%d]" % (path, i)
        if not isinstance(item, t.Mapping):
            raise IPVSValidationError(item_path, "must be a dictionary")
        key = _memo_key(item, shape)
        done = memo.get(key) if key is not None else None
        if done is not None:
            rs = dict(done)
            rs["address"] = parse_address(item["address"], _path(item_path, "address"))
        else:
            warned = len(_WARNINGS)
            rs = normalize_real_server(item, svc, item_path)
            if key is not None and len(_WARNINGS) == warned:
                memo[key] = rs
        key = real_server_key(rs)
        if key in out:
            raise IPVSValidationError(item_path, "real server %s is listed twice" % real_server_label(rs))
        out[key] = rs
    return [out[k] for k in sorted(out, key=_real_server_sort_key)]


def _memo_key(item: t.Mapping[str, t.Any], shape: tuple) -> tuple | None:
    """What a real server's validation depends on besides its address: every other field with
    its type (so 1, 1.0 and True differ), the address family, the strictness and what it uses of
    its service (``shape``); None when a value is not hashable or the address is not a string."""
    address = item.get("address")
    if not isinstance(address, str):
        return None
    try:
        rest = tuple(sorted((k, type(v).__name__, v) for k, v in item.items() if k != "address"))
        hash(rest)
    except TypeError:
        return None
    return (rest, ":" in address, _STRICT[0], shape)


def normalize_real_server(raw: t.Mapping[str, t.Any], svc: t.Mapping[str, t.Any], path: str = "",
                          kernel: bool = False) -> dict[str, t.Any]:
    """Validate one real server of ``svc`` (a canonical service) and return it canonical.

    ``kernel``: the record comes from the kernel, which keeps weights above ipvsadm's
    documented 65535 (up to INT_MAX); user input stays within 0..65535.
    """
    if not isinstance(raw, t.Mapping):
        raise IPVSValidationError(path, "must be a dictionary")
    known = set(REAL_SERVER_FIELDS) | {"active_connections", "inactive_connections", "persistent_connections",
                                       "stats", "rates"}
    for key in raw:
        if key not in known:
            raise IPVSValidationError(_path(path, show(key) if not isinstance(key, str) else key[:SHOW_MAX]), "unknown option")
    get = raw.get
    if not _given(get("address")):
        raise IPVSValidationError(_path(path, "address"), "a real server needs an address")
    addr = parse_address(get("address"), _path(path, "address"))
    forwarding = _opt_choice(get("forwarding"), "dr", _path(path, "forwarding"), FORWARDING, FORWARDING_ALIASES)
    family = family_of(addr)
    if family != svc["family"] and forwarding != "tunnel":
        raise IPVSValidationError(_path(path, "address"), "%s is %s but the service is %s: mixed families need forwarding=tunnel"
                                  % (addr, family, svc["family"]))
    port_raw = get("port")
    if svc["fwmark"] is not None:
        # 0: the packet's own destination port.
        port = 0 if not _given(port_raw) else _int(port_raw, _path(path, "port"), 0, 65535)
    else:
        port = svc["port"] if not _given(port_raw) else _int(port_raw, _path(path, "port"), 0, 65535)
        if forwarding != "nat" and port != svc["port"] and not kernel:
            # The kernel keeps it (DR and tunnels ignore the port): warn, do not refuse.
            warn(_path(path, "port"), "%d differs from the service port %d: only forwarding=nat can map ports"
                 % (port, svc["port"]))
    rs: dict[str, t.Any] = {
        "address": addr,
        "port": port,
        "forwarding": forwarding,
        "weight": 1 if not _given(get("weight")) else _int(get("weight"), _path(path, "weight"), 0,
                                                           MAX_WEIGHT if _STRICT[0] and not kernel else MAX_THRESHOLD),
        "upper_threshold": 0 if not _given(get("upper_threshold")) else _int(get("upper_threshold"), _path(path, "upper_threshold"), 0, MAX_THRESHOLD),
        "lower_threshold": 0 if not _given(get("lower_threshold")) else _int(get("lower_threshold"), _path(path, "lower_threshold"), 0, MAX_THRESHOLD),
    }
    if rs["weight"] > MAX_WEIGHT and not kernel:
        # The kernel (and ipvsadm 1.31) hold weights up to INT_MAX; ipvsadm documents 0..65535.
        warn(_path(path, "weight"), "%d is above the documented maximum %d; the kernel keeps it" % (rs["weight"], MAX_WEIGHT))
    if rs["lower_threshold"] > rs["upper_threshold"]:
        raise IPVSValidationError(_path(path, "lower_threshold"), "%d is above upper_threshold %d (the kernel refuses this; 0 means no limit only for upper)"
                                  % (rs["lower_threshold"], rs["upper_threshold"]))
    tun_type, tun_port, tun_csum = get("tunnel_type"), get("tunnel_port"), get("tunnel_checksum")
    if forwarding != "tunnel":
        for name, value in (("tunnel_type", tun_type), ("tunnel_port", tun_port), ("tunnel_checksum", tun_csum)):
            if _given(value) and value != 0:
                raise IPVSValidationError(_path(path, name), "only applies to forwarding=tunnel (forwarding is %s)" % forwarding)
        rs.update(tunnel_type=None, tunnel_port=None, tunnel_checksum=None)
        return rs
    tun_type = _opt_choice(tun_type, "ipip", _path(path, "tunnel_type"), TUNNEL_TYPES)
    if tun_type == "gue":
        if not _given(tun_port) or tun_port == 0:
            raise IPVSValidationError(_path(path, "tunnel_port"), "tunnel_type=gue needs a tunnel_port")
        tun_port = _int(tun_port, _path(path, "tunnel_port"), 1, 65535)
    elif _given(tun_port) and tun_port != 0:
        raise IPVSValidationError(_path(path, "tunnel_port"), "only applies to tunnel_type=gue (tunnel_type is %s)" % tun_type)
    else:
        tun_port = None
    tun_csum = _opt_choice(tun_csum, "nocsum", _path(path, "tunnel_checksum"), TUNNEL_CHECKSUMS)
    if tun_csum not in _TUNNEL_CHECKSUM_ALLOWED[tun_type]:
        raise IPVSValidationError(_path(path, "tunnel_checksum"), "%r does not apply to tunnel_type=%s" % (tun_csum, tun_type))
    rs.update(tunnel_type=tun_type, tunnel_port=tun_port, tunnel_checksum=tun_csum if tun_type != "ipip" else None)
    return rs


def service_key(svc: t.Mapping[str, t.Any]) -> tuple:
    """Identity of a service in the kernel table."""
    if svc.get("fwmark") is not None:
        return ("fwmark", svc["family"], svc["fwmark"])
    return (svc["protocol"], svc["family"], svc["address"], svc["port"])


def real_server_key(rs: t.Mapping[str, t.Any]) -> tuple:
    return (rs["address"], rs["port"])


def _addr_sort(address: str | None) -> tuple:
    # inet_pton: the packed address sorts numerically, and it is cheap for tables of 50,000 entries.
    if address is None:
        return (0, b"")
    if ":" in address:
        return (6, socket.inet_pton(socket.AF_INET6, address))
    return (4, socket.inet_pton(socket.AF_INET, address))


def service_sort_key(svc: t.Mapping[str, t.Any]) -> tuple:
    """ipvsadm's listing order: fwmark, family, protocol number, address, port."""
    return (svc.get("fwmark") or 0, FAMILIES[svc["family"]], PROTOCOLS.get(svc.get("protocol") or "tcp", 0),
            _addr_sort(svc.get("address")), svc.get("port") or 0)


def _real_server_sort_key(key: tuple) -> tuple:
    return (_addr_sort(key[0]), key[1])


def real_server_sort_key(rs: t.Mapping[str, t.Any]) -> tuple:
    return _real_server_sort_key(real_server_key(rs))


def _hostport(address: str, port: int | None) -> str:
    host = "[%s]" % address if ":" in address else address
    return host if port is None else "%s:%d" % (host, port)


def service_label(svc: t.Mapping[str, t.Any]) -> str:
    """Human name of a service for messages: 'tcp 10.0.0.1:80' or 'fwmark 1 (ipv6)'."""
    if svc.get("fwmark") is not None:
        return "fwmark %d%s" % (svc["fwmark"], " (ipv6)" if svc["family"] == "ipv6" else "")
    return "%s %s" % (svc["protocol"], _hostport(svc["address"], svc["port"]))


def real_server_label(rs: t.Mapping[str, t.Any]) -> str:
    return _hostport(rs["address"], rs["port"])


def service_config(svc: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The configurable fields of a service (no real servers, no stats)."""
    return {k: svc[k] for k in SERVICE_FIELDS}


def real_server_config(rs: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    return {k: rs[k] for k in REAL_SERVER_FIELDS}


def sort_table(services: t.Iterable[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """Services in ipvsadm order, each with its real servers sorted; refuses duplicate keys."""
    seen: dict[tuple, dict[str, t.Any]] = {}
    for svc in services:
        key = service_key(svc)
        if key in seen:
            raise IPVSValidationError("config", "service %s is listed twice" % service_label(svc))
        seen[key] = svc
    out = []
    for svc in sorted(seen.values(), key=service_sort_key):
        if svc.get("real_servers") is not None:
            svc = dict(svc, real_servers=sorted(svc["real_servers"], key=real_server_sort_key))
        out.append(svc)
    return out


def normalize_table(raw: t.Any, path: str = "config", strict: bool = True) -> list[dict[str, t.Any]]:
    """Normalize a list of services (each may carry ``real_servers``); duplicates refused.

    ``strict``: what the model only warns about (weights above 65535, port-0 services without
    persistence, ...) is refused, for new input such as a role's inventory. The modules pass
    ``strict=False``: a table the kernel holds must be readable and re-applicable.
    """
    saved, memo = _STRICT[0], _RS_MEMO[0]
    _STRICT[0], _RS_MEMO[0] = strict, {}
    try:
        return _normalize_table(raw, path)
    finally:
        _STRICT[0], _RS_MEMO[0] = saved, memo


def _normalize_table(raw: t.Any, path: str) -> list[dict[str, t.Any]]:
    if not isinstance(raw, (list, tuple)):
        raise IPVSValidationError(path, "must be a list of services")
    services = []
    seen: dict[tuple, int] = {}
    for i, item in enumerate(raw):
        item_path = "%s[%d]" % (path, i)
        if not isinstance(item, t.Mapping):
            raise IPVSValidationError(item_path, "must be a dictionary")
        svc = normalize_service(item, item_path)
        key = service_key(svc)
        if key in seen:
            raise IPVSValidationError(item_path, "service %s is also %s[%d]" % (service_label(svc), path, seen[key]))
        seen[key] = i
        services.append(svc)
    return sort_table(services)
