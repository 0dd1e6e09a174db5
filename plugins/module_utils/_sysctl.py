# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel parameters: names, values, /proc/sys and sysctl.d drop-in files.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

The pure part (key and value validation, drop-in rendering and parsing, planning) has no
I/O; ``read_value`` / ``write_value`` / ``enter_namespace`` are the only functions that touch
the system. Errors are ``SysctlError`` carrying the offending key, so that the module can
fail naming it before anything is written.
"""

from __future__ import annotations

import os
import re
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils._netns import enter

PROC_SYS = "/proc/sys"
HEADER = ("# Managed by Ansible (lvs.ipvs.lvs_sysctl). Local changes are overwritten.\n"
          "# Applied at boot by systemd-sysctl / procps (sysctl --system).\n")

# Ranges of the parameters an LVS setup uses (checked before anything is written; any other
# parameter is checked against the shape of its current value).  Per-interface parameters
# (net.ipv4.conf.IFACE.NAME) are listed by NAME.
_BOOL = (0, 1)
IPV4_CONF_RANGES: dict[str, tuple[int, int]] = {
    "forwarding": _BOOL, "send_redirects": _BOOL, "accept_redirects": _BOOL, "secure_redirects": _BOOL,
    "accept_source_route": _BOOL, "proxy_arp": _BOOL, "rp_filter": (0, 2), "arp_ignore": (0, 8),
    "arp_announce": (0, 2), "arp_filter": _BOOL, "arp_accept": (0, 2), "log_martians": _BOOL,
    "route_localnet": _BOOL, "promote_secondaries": _BOOL,
}
IPV6_CONF_RANGES: dict[str, tuple[int, int]] = {
    "forwarding": (0, 2), "accept_ra": (0, 2), "accept_redirects": _BOOL, "disable_ipv6": _BOOL,
    "accept_dad": (0, 2),
}
KEY_RANGES: dict[str, tuple[int, int]] = {
    "net.ipv4.ip_forward": _BOOL, "net.ipv4.ip_nonlocal_bind": _BOOL, "net.ipv6.ip_nonlocal_bind": _BOOL,
    "net.ipv4.vs.conntrack": _BOOL, "net.ipv4.vs.expire_nodest_conn": _BOOL,
    "net.ipv4.vs.expire_quiescent_template": _BOOL, "net.ipv4.vs.conn_reuse_mode": (0, 2),
    "net.ipv4.vs.drop_entry": (0, 3), "net.ipv4.vs.drop_packet": (0, 3), "net.ipv4.vs.secure_tcp": (0, 3),
    "net.ipv4.vs.am_droprate": (0, 2 ** 31 - 1), "net.ipv4.vs.amemthresh": (0, 2 ** 31 - 1),
    "net.ipv4.vs.nat_icmp_send": _BOOL, "net.ipv4.vs.sloppy_tcp": _BOOL, "net.ipv4.vs.sloppy_sctp": _BOOL,
    "net.ipv4.vs.snat_reroute": _BOOL, "net.ipv4.vs.pmtu_disc": _BOOL, "net.ipv4.vs.backup_only": _BOOL,
    "net.ipv4.vs.schedule_icmp": _BOOL, "net.ipv4.vs.ignore_tunneled": _BOOL, "net.ipv4.vs.run_estimation": _BOOL,
    "net.ipv4.vs.sync_version": _BOOL, "net.ipv4.vs.cache_bypass": _BOOL,
}
_CONF_RE = re.compile(r"^net\.(ipv4|ipv6)\.(conf|neigh)\.([^.]+)\.(.+)$")
_INT_RE = re.compile(r"^-?\d+$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:@/+-]+$")


class SysctlError(ValueError):
    """Bad input or a refused write; ``key`` names the parameter (or the option)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__("%s: %s" % (key, message))
        self.key = key


# -- names -------------------------------------------------------------------

def normalize_key(raw: t.Any) -> str:
    """Canonical dotted name. ``net/ipv4/ip_forward`` and ``net.ipv4.ip_forward`` are the same key.

    As in sysctl(8), a dot inside an interface name is written as a slash in dotted form
    (``net.ipv4.conf.eth0/100.rp_filter`` for the VLAN interface ``eth0.100``).
    """
    key = str(raw).strip()
    if not key or not _KEY_RE.match(key) or ".." in key or key.startswith((".", "/")) or key.endswith((".", "/")):
        raise SysctlError(key or repr(raw), "is not a kernel parameter name")
    if "/" in key and ("." not in key or key.index("/") < key.index(".")):  # path form: net/ipv4/conf/eth0.100/rp_filter
        return ".".join(part.replace(".", "/") for part in key.split("/"))
    return key


def key_path(key: str, root: str = PROC_SYS) -> str:
    """/proc/sys path of a canonical key (slashes in components are dots in the file name)."""
    return os.path.join(root, *[part.replace("/", ".") for part in key.split(".")])


def interface_of(key: str) -> tuple[str, str] | None:
    """(interface, template key on ``all``) for per-interface keys, else None."""
    match = _CONF_RE.match(key)
    if not match:
        return None
    family, kind, iface, name = match.groups()
    if iface in ("all", "default"):
        return None
    template_iface = "default"
    return iface.replace("/", "."), "net.%s.%s.%s.%s" % (family, kind, template_iface, name)


# -- values ------------------------------------------------------------------

def normalize_value(raw: t.Any, key: str) -> str:
    """Text of a value as /proc/sys shows it: booleans as 1/0, lists joined, whitespace collapsed."""
    if isinstance(raw, bool):
        return "1" if raw else "0"
    if isinstance(raw, (list, tuple)):
        return " ".join(normalize_value(v, key) for v in raw)
    if raw is None:
        raise SysctlError(key, "has no value")
    if isinstance(raw, float):
        raise SysctlError(key, "%r is not a valid value (kernel parameters take integers or text)" % (raw,))
    text = " ".join(str(raw).split())
    if text == "":
        raise SysctlError(key, "has an empty value")
    return text


def range_of(key: str) -> tuple[int, int] | None:
    if key in KEY_RANGES:
        return KEY_RANGES[key]
    match = _CONF_RE.match(key)
    if match and match.group(2) == "conf":
        table = IPV4_CONF_RANGES if match.group(1) == "ipv4" else IPV6_CONF_RANGES
        return table.get(match.group(4))
    return None


def check_value(key: str, value: str, current: str | None) -> None:
    """Refuse a value that cannot be right: out of the known range, or not shaped like the current value."""
    bounds = range_of(key)
    if bounds is not None:
        if not _INT_RE.match(value):
            raise SysctlError(key, "%r is not an integer (expected %d..%d)" % (value, bounds[0], bounds[1]))
        if not bounds[0] <= int(value) <= bounds[1]:
            raise SysctlError(key, "%s is out of range %d..%d" % (value, bounds[0], bounds[1]))
        return
    if current is None:
        return
    have, want = current.split(), value.split()
    if have and all(_INT_RE.match(v) for v in have):
        if not all(_INT_RE.match(v) for v in want):
            raise SysctlError(key, "%r is not numeric like the current value %r" % (value, current))
        if len(want) != len(have):
            raise SysctlError(key, "%r has %d field(s); the kernel expects %d like %r" % (value, len(want), len(have), current))


# -- drop-in files -----------------------------------------------------------

def render(values: t.Mapping[str, str]) -> str:
    """A sysctl.d drop-in for ``values`` (sorted by key)."""
    return HEADER + "".join("%s = %s\n" % (k, values[k]) for k in sorted(values))


def parse(text: str) -> dict[str, str]:
    """key -> value of a sysctl.d file (comments, blank lines and a leading '-' ignored)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[normalize_key(key.strip().lstrip("-"))] = " ".join(value.split())
    return out


# -- planning ----------------------------------------------------------------

def plan(want: t.Mapping[str, str], running: t.Mapping[str, str | None]) -> list[dict[str, t.Any]]:
    """Runtime changes: one {key, before, after} for each key whose running value differs.

    A key whose running value is None (per-interface key of an absent interface) is left to
    the drop-in: it is applied when the interface appears.
    """
    changes = []
    for key in sorted(want):
        before = running.get(key)
        if before is not None and before != want[key]:
            changes.append({"key": key, "before": before, "after": want[key]})
    return changes


# Parameters that appear only once a kernel module is loaded: module -> path prefix under /proc/sys.
MODULE_PARAMETERS = {"ip_vs": "net/ipv4/vs/", "ipip": "net/ipv4/conf/tunl0/"}
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,55}$")


def check_modules(raw: t.Any) -> list[str]:
    """Kernel module names, canonical (``-`` and ``_`` are the same to modprobe)."""
    if raw is None:
        return []
    if not isinstance(raw, (list, tuple)):
        raise SysctlError("modules", "must be a list of kernel module names")
    names: list[str] = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not _MODULE_NAME.match(name):
            raise SysctlError("modules", "modules[%d]: %r is not a kernel module name" % (index, name))
        canon = name.replace("-", "_")
        if canon not in names:
            names.append(canon)
    return names


def module_loaded(name: str, root: str = "/sys/module") -> bool:
    return os.path.isdir(os.path.join(root, name))


def provider_of(key: str, modules: t.Iterable[str]) -> str | None:
    """Which of ``modules`` (not loaded yet) creates parameter ``key``, if any."""
    path = key.replace(".", "/")
    for module in modules:
        prefix = MODULE_PARAMETERS.get(module)
        if prefix and path.startswith(prefix):
            return module
    return None


def render_modules(names: t.Sequence[str]) -> str:
    return "# Kernel modules loaded at boot (lvs.ipvs.lvs_sysctl), before systemd-sysctl\n" + "".join(
        n + "\n" for n in names)


def validate(raw: t.Mapping[str, t.Any], exists: t.Callable[[str], bool],
             read: t.Callable[[str], str | None],
             pending: t.Iterable[str] = ()) -> tuple[dict[str, str], dict[str, str | None], list[str]]:
    """Validate every key and value before anything is written.

    Returns (canonical values, running values (None for an absent interface), warnings).
    Unknown parameters fail; a per-interface parameter whose interface does not exist yet is
    accepted when the parameter exists on ``default`` (it is persisted and applied by the
    platform when the interface appears) and reported in the warnings.
    """
    if not isinstance(raw, t.Mapping) or not raw:
        raise SysctlError("sysctls", "must be a non-empty dictionary of parameter: value")
    values: dict[str, str] = {}
    running: dict[str, str | None] = {}
    warnings: list[str] = []
    for raw_key, raw_value in raw.items():
        key = normalize_key(raw_key)
        if key in values:
            raise SysctlError(key, "is given twice (as %r and another spelling)" % (raw_key,))
        value = normalize_value(raw_value, key)
        if not exists(key) and provider_of(key, pending):
            # Check mode on a kernel that has not loaded the module yet: the real run loads it first.
            check_value(key, value, None)
            running[key] = None
            warnings.append("%s: appears when %s is loaded (check mode: not loaded yet)" % (key, provider_of(key, pending)))
        elif exists(key):
            current = read(key)
            check_value(key, value, current)
            running[key] = current
        else:
            iface = interface_of(key)
            if iface is None or not exists(iface[1]):
                raise SysctlError(key, "unknown kernel parameter (no %s)" % key_path(key))
            check_value(key, value, read(iface[1]))
            running[key] = None
            warnings.append("%s: interface %s does not exist (yet): the value is persisted and applied "
                            "when it appears" % (key, iface[0]))
        values[key] = value
    return values, running, warnings


# -- I/O ---------------------------------------------------------------------

def exists(key: str, root: str = PROC_SYS) -> bool:
    return os.path.isfile(key_path(key, root))


def read_value(key: str, root: str = PROC_SYS) -> str | None:
    try:
        with open(key_path(key, root)) as handle:
            return " ".join(handle.read().split())
    except PermissionError:  # write-only parameters (e.g. net.ipv4.route.flush)
        return None


def write_value(key: str, value: str, root: str = PROC_SYS) -> None:
    try:
        with open(key_path(key, root), "w") as handle:
            handle.write(value + "\n")
    except OSError as exc:
        raise SysctlError(key, "the kernel refused %r: %s" % (value, exc.strerror)) from None


def enter_namespace(name: str) -> None:
    """Move this process into network namespace ``name`` (/run/netns/NAME or a path)."""
    problem = enter(name)
    if problem:
        raise SysctlError("namespace", problem)


def apply(changes: t.Sequence[t.Mapping[str, t.Any]], root: str = PROC_SYS) -> None:
    """Write the running values; on a refusal, put back the ones already written and re-raise."""
    done: list[t.Mapping[str, t.Any]] = []
    try:
        for change in changes:
            write_value(change["key"], change["after"], root)
            done.append(change)
    except SysctlError:
        for change in reversed(done):
            try:
                write_value(change["key"], change["before"], root)
            except SysctlError:
                pass
        raise
