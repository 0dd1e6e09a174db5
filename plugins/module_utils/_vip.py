# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Virtual IP addresses on an interface: validation, ownership, planning, rtnetlink.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

The pure part (``validate_*``, ``owned``, ``plan``, ``commands``, the state file's text) has no
I/O. ``Rtnl`` is the only class that talks to the kernel, through pyroute2 (imported when it is
created); ``read_state`` / ``write_state`` / ``lock`` / ``enter_namespace`` touch the system.
Errors are ``VipError`` carrying the offending field (``addresses[1]``, ``label``...), so that
the module fails naming it before anything is changed.

Ownership: an IPv4 address is owned when it carries the module's label (the kernel keeps it with
the address; the boot units of the roles add the same label). IPv6 addresses have no label: the
ones this module added are recorded in a state file (under /var/lib, so the record survives a
reboot, when the boot units add the addresses again). A record counts only while the address is
on the interface; records of addresses that disappeared are dropped.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import importlib.util
import ipaddress
import json
import os
import re
import socket
import struct
import tempfile
import time
import typing as t
import urllib.parse

from ansible_collections.lvs.ipvs.plugins.module_utils._files import write_atomic
from ansible_collections.lvs.ipvs.plugins.module_utils._netns import enter

HAS_PYROUTE2 = importlib.util.find_spec("pyroute2") is not None

STATE_DIR = "/var/lib/lvs.ipvs/vips"
IFNAMSIZ = 16  # the kernel's limit, NUL included: names and labels have at most 15 characters
SCOPES = {"global": 0, "host": 254}
SCOPE_NAMES = {v: k for k, v in SCOPES.items()}
IFA_F_NODAD = 0x02
IFA_F_DEPRECATED = 0x20
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_NOARP = 0x80
ARPHRD_ETHER = 1
ETH_P_ARP = 0x0806
FOREVER = 0xFFFFFFFF
LOCK_TIMEOUT = 120.0
LOCK_DIR = "/run/lock"
OWNER = "lvs.ipvs.lvs_vip"
_IFNAME_BAD = re.compile(r"[\s/:]")


class VipError(ValueError):
    """Bad input or a refused change; ``field`` names the option (``addresses[2]``, ``label``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("%s: %s" % (field, message))
        self.field = field


# -- validation (pure) ---------------------------------------------------------

def validate_interface(name: t.Any) -> str:
    if not isinstance(name, str) or not name:
        raise VipError("interface", "must be a device name such as eth0 or lo")
    if len(name) >= IFNAMSIZ:
        raise VipError("interface", "%r is %d characters long; device names have at most %d"
                       % (name[:40], len(name), IFNAMSIZ - 1))
    if name in (".", "..") or _IFNAME_BAD.search(name) or not name.isprintable():
        raise VipError("interface", "%r is not a device name (no spaces, '/' or ':')" % name)
    return name


def parse_address(raw: t.Any, field: str) -> dict[str, t.Any]:
    """One VIP: a single address, IPv4 or IPv6, optionally /32 or /128; canonical (compressed) form."""
    if not isinstance(raw, str):
        raise VipError(field, "%r is not an address (give a string such as 192.0.2.10 or 2001:db8::10)" % (raw,))
    text = raw.strip()
    address, slash, prefix = text.partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise VipError(field, "%r is not an IPv4 or IPv6 address" % raw[:80]) from None
    if "%" in address:
        raise VipError(field, "%r: a VIP has no zone index" % raw[:80])
    full = 32 if ip.version == 4 else 128
    if slash:
        if prefix != str(full):
            raise VipError(field, "%r: a VIP is a single address, /%d or no prefix length" % (raw[:80], full))
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
        raise VipError(field, "%s is not usable as a VIP (unspecified, multicast or loopback)" % ip)
    if ip.version == 6 and (ip.is_link_local or ip.ipv4_mapped is not None):
        raise VipError(field, "%s is not usable as a VIP (link-local or IPv4-mapped)" % ip)
    return {"address": ip.compressed, "prefixlen": full, "family": ip.version}


def validate_addresses(raw: t.Any, field: str = "addresses") -> list[dict[str, t.Any]]:
    """The wanted VIPs, canonical, each with ``index`` (its position, for errors); duplicates refused."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise VipError(field, "must be a list of addresses")
    out: list[dict[str, t.Any]] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        name = "%s[%d]" % (field, i)
        vip = parse_address(item, name)
        if vip["address"] in seen:
            raise VipError(name, "%s is the same address as %s[%d]" % (vip["address"], field, seen[vip["address"]]))
        seen[vip["address"]] = i
        vip["index"] = i
        out.append(vip)
    return out


def validate_label(label: t.Any, interface: str, need_ipv4: bool) -> str | None:
    """The IPv4 label: given, or ``<interface>:lvs`` when that fits in 15 characters.

    A label must be ``<interface>:<tag>`` (what ``ip address`` accepts and shows as an alias);
    the bare interface name would claim the interface's own addresses, so it is refused. Returns
    None when no label can be derived and no IPv4 address needs one.
    """
    if label is None:
        derived = interface + ":lvs"
        if len(derived) < IFNAMSIZ:
            return derived
        if need_ipv4:
            raise VipError("label", "the default label %s has %d characters, at most %d fit: give a label "
                           "(%s:<tag>)" % (derived, len(derived), IFNAMSIZ - 1, interface))
        return None
    if not isinstance(label, str):
        raise VipError("label", "must be a string such as %s:lvs" % interface)
    if not label.startswith(interface + ":") or len(label) == len(interface) + 1:
        raise VipError("label", "%r must be the interface name, a colon and a tag (%s:lvs); the bare interface "
                       "name would claim the addresses of the interface itself" % (label[:40], interface))
    if len(label) >= IFNAMSIZ:
        raise VipError("label", "%r has %d characters; the kernel keeps at most %d" % (label[:40], len(label), IFNAMSIZ - 1))
    if _IFNAME_BAD.search(label[len(interface) + 1:]) or not label.isprintable():
        raise VipError("label", "%r: the tag after the colon has no spaces, '/' or ':'" % label)
    return label


def default_state_path(interface: str, namespace: str | None) -> str:
    if namespace is None:
        return os.path.join(STATE_DIR, interface + ".json")
    return os.path.join(STATE_DIR, "netns-" + urllib.parse.quote(namespace, safe=""), interface + ".json")


def text(vip: t.Mapping[str, t.Any]) -> str:
    return "%s/%d" % (vip["address"], vip["prefixlen"])


def sort_key(vip: t.Mapping[str, t.Any]) -> tuple[int, int]:
    return vip["family"], int(ipaddress.ip_address(vip["address"]))


# -- state file (text is pure; read/write are I/O) ------------------------------

def render_state(interface: str, namespace: str | None, ipv6: t.Iterable[str]) -> str:
    return json.dumps({"owner": OWNER, "interface": interface, "namespace": namespace,
                       "ipv6": sorted(ipv6, key=lambda a: int(ipaddress.ip_address(a.split("/")[0])))},
                      indent=2) + "\n"


def parse_state(content: str | None, path: str) -> set[str]:
    """The IPv6 addresses (``addr/128``) recorded in a state file; refuses a file that is not one."""
    if content is None:
        return set()
    try:
        data = json.loads(content)
        records = data["ipv6"]
        if data.get("owner") != OWNER or not isinstance(records, list):
            raise ValueError
        return {text(parse_address(r, "state_path")) for r in records}
    except (ValueError, KeyError, TypeError, VipError, AttributeError):
        raise VipError("state_path", "%s is not a state file of %s (move it away, or give another state_path)"
                       % (path, OWNER)) from None


def read_state(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read(1 << 20)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VipError("state_path", "cannot read %s: %s" % (path, exc.strerror)) from None


def prepare_state_dir(path: str) -> None:
    """Create the state file's directory (mode 0755) and prove a file can be written in it."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if os.path.isdir(path):
            raise VipError("state_path", "%s is a directory" % path)
        fd, tmp = tempfile.mkstemp(prefix=".lvs-vip-probe-", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise VipError("state_path", "cannot write in %s (%s)" % (directory, exc.strerror)) from None


def write_state(path: str, content: str) -> None:
    """Replace the state file atomically (temporary file, fsync, rename)."""
    write_atomic(path, content)


def remove_state(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def lock(path: str, timeout: float = LOCK_TIMEOUT, lock_dir: str = LOCK_DIR) -> int:
    """Serialize changing runs on one state file: an flock under /run/lock (gone at reboot, and
    dropped by the kernel when the process ends however it ends), bounded wait. Returns the fd."""
    digest = hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    lock_path = os.path.join(lock_dir, "lvs.ipvs-vip-%s.lock" % digest)
    try:
        os.makedirs(lock_dir, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise VipError("state_path", "cannot create the lock %s: %s" % (lock_path, exc.strerror)) from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise VipError("state_path", "cannot take the lock %s: %s" % (lock_path, exc.strerror)) from None
        if time.monotonic() >= deadline:
            os.close(fd)
            raise VipError("state_path", "another run holds %s for more than %d s; nothing was changed"
                           % (lock_path, timeout))
        time.sleep(0.2)


# -- planning (pure) -------------------------------------------------------------

def owned(have: t.Sequence[t.Mapping[str, t.Any]], label: str | None, records: t.Collection[str]) -> list[dict]:
    """The addresses of ``have`` this module owns: IPv4 with ``label``, IPv6 recorded in the state file."""
    mine = []
    for addr in have:
        if addr["family"] == 4:
            if label is not None and addr.get("label") == label:
                mine.append(dict(addr))
        elif text(addr) in records:
            mine.append(dict(addr))
    return sorted(mine, key=sort_key)


def _differs(vip: t.Mapping[str, t.Any], cur: t.Mapping[str, t.Any], scope: int, deprecated: bool) -> bool:
    if vip["family"] == 4:
        return cur.get("scope", 0) != scope or cur["prefixlen"] != vip["prefixlen"]
    return bool(cur.get("deprecated")) != deprecated or cur["prefixlen"] != vip["prefixlen"]


def plan(want: t.Sequence[t.Mapping[str, t.Any]], have: t.Sequence[t.Mapping[str, t.Any]], state: str,
         label: str | None, records: t.Collection[str], scope: int = 0, deprecated: bool = True,
         listed: bool = True) -> dict[str, t.Any]:
    """Operations that turn ``have`` into what ``state`` asks for, touching only owned addresses.

    ``want``: the validated VIPs; ``have``: the interface's addresses (``address``, ``prefixlen``,
    ``family``, ``label``, ``scope``, ``deprecated``); ``records``: IPv6 addresses of the state file;
    ``listed``: whether the task listed addresses (``absent`` without a list removes all it owns).

    Returns ``ops`` (adds and in-place changes first, then replacements, then deletions: make before
    break), ``owned_before`` / ``owned_after`` (sorted), ``not_owned`` (listed addresses on the
    interface that belong to someone else: never touched) and ``records`` (IPv6 to record after).
    """
    if state not in ("present", "exact", "absent"):
        raise VipError("state", "%r is not one of present, exact, absent" % (state,))
    by_ip = {a["address"]: a for a in have}
    mine = owned(have, label, records)
    mine_ips = {a["address"] for a in mine}
    adds: list[dict] = []
    changes: list[dict] = []
    dels: list[dict] = []
    not_owned: list[dict] = []
    wanted_ips = {v["address"] for v in want}
    field_of = {v["address"]: "addresses[%d]" % v["index"] for v in want if "index" in v}

    def attrs(vip: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
        out = {"address": vip["address"], "prefixlen": vip["prefixlen"], "family": vip["family"]}
        if vip["family"] == 4:
            out.update(label=label, scope=scope)
        else:
            out.update(deprecated=deprecated)
        return out

    if state in ("present", "exact"):
        for vip in sorted(want, key=sort_key):
            field = field_of.get(vip["address"], "addresses")
            cur = by_ip.get(vip["address"])
            if cur is None:
                adds.append(dict(attrs(vip), op="add", field=field))
            elif vip["address"] not in mine_ips:
                not_owned.append(dict(cur, field=field))
            elif _differs(vip, cur, scope, deprecated):
                new = attrs(vip)
                kind = "change" if vip["family"] == 6 and cur["prefixlen"] == vip["prefixlen"] else "replace"
                changes.append(dict(new, op=kind, field=field, old=dict(cur)))
        if state == "exact":
            for cur in mine:
                if cur["address"] not in wanted_ips:
                    dels.append(dict(cur, op="del", field="addresses"))
    else:
        for cur in mine:
            if not listed or cur["address"] in wanted_ips:
                dels.append(dict(cur, op="del", field=field_of.get(cur["address"], "addresses")))
        for vip in want:
            cur = by_ip.get(vip["address"])
            if cur is not None and vip["address"] not in mine_ips:
                not_owned.append(dict(cur, field=field_of[vip["address"]]))
    ops = adds + [c for c in changes if c["op"] == "change"] + [c for c in changes if c["op"] == "replace"] + dels
    gone = {d["address"] for d in dels}
    after = [a for a in mine if a["address"] not in gone and a["address"] not in {c["address"] for c in changes}]
    after += [{k: v for k, v in op.items() if k not in ("op", "field", "old")} for op in adds + changes]
    after = sorted(after, key=sort_key)
    return {"ops": ops, "owned_before": mine, "owned_after": after, "not_owned": sorted(not_owned, key=sort_key),
            "records": sorted({text(a) for a in after if a["family"] == 6})}


def undo_of(op: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """The operations that revert ``op`` (applied in the given order)."""
    plain = {k: v for k, v in op.items() if k not in ("op", "old")}
    if op["op"] == "add":
        return [dict(plain, op="del")]
    if op["op"] == "del":
        return [dict(plain, op="add")]
    old = dict(op["old"], field=op["field"])
    if op["op"] == "change":
        return [dict(old, op="change", old=plain)]
    return [dict(plain, op="del"), dict(old, op="add")]


def commands(ops: t.Sequence[t.Mapping[str, t.Any]], interface: str) -> list[str]:
    """The equivalent ``ip address`` command lines."""
    lines = []
    for op in ops:
        addr = "%s dev %s" % (text(op), interface)
        if op["op"] == "del":
            lines.append("ip address del %s" % addr)
            continue
        if op["op"] == "replace":
            lines.append("ip address del %s" % addr)
        verb = "change" if op["op"] == "change" else "add"
        if op["family"] == 4:
            extra = (" label %s" % op["label"] if op.get("label") else "") + " scope %s" % SCOPE_NAMES.get(
                op.get("scope", 0), op.get("scope", 0))
        else:
            extra = " nodad" + (" preferred_lft 0" if op.get("deprecated") else " preferred_lft forever")
        lines.append("ip address %s %s%s" % (verb, addr, extra))
    return lines


# -- the kernel (I/O) --------------------------------------------------------------

def enter_namespace(name: str) -> None:
    """Move this process into network namespace ``name`` (/run/netns/NAME or a path)."""
    problem = enter(name)
    if problem:
        raise VipError("namespace", problem)


class Rtnl:
    """Addresses of one device over rtnetlink (pyroute2)."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
        from pyroute2.netlink.exceptions import NetlinkError  # pylint: disable=import-outside-toplevel
        self.ipr = IPRoute()
        self.error = NetlinkError
        self.ifname = "?"

    def close(self) -> None:
        self.ipr.close()

    def link(self, name: str) -> dict[str, t.Any]:
        """The device ``name``: found in a dump of all devices (asking the kernel for one device by
        name can load a module: netdev-tunl0 loads ipip, which check mode must not do)."""
        names = []
        for msg in self.ipr.get_links():
            ifname = msg.get("ifname") or msg.get_attr("IFLA_IFNAME")
            names.append(ifname)
            if ifname == name:
                self.ifname = name
                return {"index": msg["index"], "up": bool(msg["flags"] & IFF_UP), "name": name,
                        "mac": msg.get_attr("IFLA_ADDRESS"),
                        "arp": msg["ifi_type"] == ARPHRD_ETHER and not msg["flags"] & (IFF_NOARP | IFF_LOOPBACK)}
        hint = ""
        if name in ("tunl0", "ip6tnl0", "sit0", "gre0", "ip6gre0"):
            hint = " (%s appears when its kernel module is loaded: modprobe %s)" % (
                name, {"tunl0": "ipip", "ip6tnl0": "ip6_tunnel", "sit0": "sit", "gre0": "ip_gre",
                       "ip6gre0": "ip6_gre"}[name])
        raise VipError("interface", "no device %s here%s; devices: %s" % (name, hint, ", ".join(sorted(names))[:300]))

    def set_up(self, index: int) -> None:
        """``ip link set dev X up``; raises VipError naming link_up when the kernel refuses it."""
        try:
            self.ipr.link("set", index=index, state="up")
        except self.error as exc:
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise VipError("link_up", "the kernel refused `ip link set dev %s up`: %s" % (self.ifname, reason)) from None

    def addresses(self, index: int) -> list[dict[str, t.Any]]:
        out = []
        for msg in self.ipr.get_addr(index=index):
            if msg["index"] != index:
                continue
            family = 4 if msg["family"] == 2 else 6
            addr = (msg.get_attr("IFA_LOCAL") if family == 4 else None) or msg.get_attr("IFA_ADDRESS")
            if addr is None:
                continue
            flags = msg.get_attr("IFA_FLAGS")
            flags = msg["flags"] if flags is None else flags
            cur = {"address": ipaddress.ip_address(addr).compressed, "prefixlen": msg["prefixlen"], "family": family}
            if family == 4:
                cur.update(label=msg.get_attr("IFA_LABEL"), scope=msg["scope"])
            else:
                cur.update(deprecated=bool(flags & IFA_F_DEPRECATED))
            out.append(cur)
        return sorted(out, key=sort_key)

    def _add(self, index: int, op: t.Mapping[str, t.Any], kind: str) -> None:
        if op["family"] == 4:
            kwargs: dict[str, t.Any] = {"scope": op.get("scope", 0)}
            if op.get("label"):
                kwargs["label"] = op["label"]
        else:
            kwargs = {"flags": IFA_F_NODAD, "preferred": 0 if op.get("deprecated") else FOREVER, "valid": FOREVER}
        self.ipr.addr(kind, index=index, address=op["address"], prefixlen=op["prefixlen"], **kwargs)

    def apply(self, index: int, op: t.Mapping[str, t.Any]) -> None:
        """One operation, whole or not at all; raises VipError naming ``op['field']`` when the kernel refuses it."""
        try:
            if op["op"] == "del":
                self.ipr.addr("del", index=index, address=op["address"], prefixlen=op["prefixlen"])
            elif op["op"] == "change":
                self._add(index, op, "replace")
            elif op["op"] == "add":
                self._add(index, op, "add")
            else:  # replace: the kernel cannot change an IPv4 address's scope or label in place
                self.ipr.addr("del", index=index, address=op["old"]["address"], prefixlen=op["old"]["prefixlen"])
                try:
                    self._add(index, op, "add")
                except self.error:
                    try:
                        self._add(index, op["old"], "add")  # put the old one back: the op did nothing
                    except self.error:
                        pass
                    raise
        except self.error as exc:
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise VipError(op["field"], "the kernel refused `%s`: %s" % (" && ".join(commands([op], self.ifname)), reason)) from None


def apply_ops(rtnl: t.Any, index: int, ops: t.Sequence[t.Mapping[str, t.Any]]) -> int:
    """Apply ``ops`` in order; if one fails, undo the ones applied (in reverse) and raise saying so.

    Returns the number applied (all of them).
    """
    done: list[t.Mapping[str, t.Any]] = []
    try:
        for op in ops:
            rtnl.apply(index, op)
            done.append(op)
    except VipError as exc:
        raise VipError(exc.field, str(exc).split(": ", 1)[1] + undo(rtnl, index, done)) from None
    return len(done)


def undo(rtnl: t.Any, index: int, done: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    """Revert ``done`` (in reverse); returns the sentence the error message ends with."""
    if not done:
        return "; nothing was changed"
    failed = []
    for op in reversed(done):
        for back in undo_of(op):
            try:
                rtnl.apply(index, back)
            except VipError as exc:
                failed.append(str(exc))
    if failed:
        return "; ROLLBACK INCOMPLETE: undoing the %d earlier change(s) failed: %s" % (len(done), "; ".join(failed))
    return "; the %d earlier change(s) of this task were undone" % len(done)


# -- announcements (I/O) ----------------------------------------------------------

def arp_frame(mac: str, address: str, reply: bool) -> bytes:
    """A gratuitous ARP request (or reply) for ``address`` from ``mac``, as an Ethernet frame (pure)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    ip = ipaddress.IPv4Address(address).packed
    target_hw = b"\xff" * 6 if reply else b"\x00" * 6
    return (b"\xff" * 6 + hw + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2 if reply else 1) + hw + ip + target_hw + ip)


def na_message(mac: str, address: str) -> bytes:
    """An unsolicited neighbour advertisement (override flag, target link-layer address) for
    ``address``; ICMPv6 without checksum, which the kernel fills in for raw ICMPv6 sockets (pure)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    return (struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ipaddress.IPv6Address(address).packed
            + struct.pack("!BB", 2, 1) + hw)


def announce(link: t.Mapping[str, t.Any], vip: t.Mapping[str, t.Any]) -> None:
    """Tell the neighbours of ``link`` that ``vip`` is here now: a gratuitous ARP request and reply
    (IPv4) or an unsolicited neighbour advertisement to all nodes (IPv6). Raises OSError."""
    if vip["family"] == 4:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
            sock.bind((link["name"], ETH_P_ARP))
            for reply in (False, True):
                sock.send(arp_frame(link["mac"], vip["address"], reply))
        return
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, link["index"])
        sock.bind((vip["address"], 0, 0, link["index"]))
        sock.sendto(na_message(link["mac"], vip["address"]), ("ff02::1", 0, 0, link["index"]))
