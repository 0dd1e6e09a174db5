# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived settings of a group of directors: canonical form, derived values, pre-flight checks.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Pure module: no I/O, no Ansible imports. The keepalived role collects one *record* per
director (its ``keepalived_*`` variables, see ``RECORD_KEYS``) and hands the records of the
whole group to:

- ``check(records)``: every problem across the inventory, each message naming the host, the
  object (``instance VI_1``, ``virtual_server tcp 192.0.2.10:80``, ...) and the field;
- ``resolve(records, host)``: what the template renders for ``host``: priorities and states
  derived from inventory order, unicast peers from the other directors, secrets replaced by
  keepalived ``$VARIABLES`` (their values only in ``secrets``), kernel features needed.

Virtual servers and real servers are validated with the same model as the IPVS modules
(``_ipvs_model``), so the keepalived role refuses what the kernel or ipvsadm would refuse.
"""

from __future__ import annotations

import ipaddress
import re
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    IPVSValidationError,
    normalize_real_server,
    normalize_service,
    real_server_key,
    real_server_label,
    service_key,
    service_label,
)

# The record of one director: these keys, each from the variable keepalived_<key>.
RECORD_KEYS = ("group", "group_hosts", "address", "static_addresses", "router_id", "vrrp_strict", "priority_base",
               "priority_step", "global_defs", "vrrp_scripts", "vrrp_instances", "vrrp_sync_groups",
               "virtual_servers", "lvs_sync_daemon", "ipvs_table_services", "kernel")

RECORD_DEFAULTS: dict[str, t.Any] = {
    "group": "",
    "group_hosts": [],
    "address": None,
    "static_addresses": [],
    "router_id": None,
    "vrrp_strict": False,
    "priority_base": 150,
    "priority_step": 10,
    "global_defs": {},
    "vrrp_scripts": [],
    "vrrp_instances": [],
    "vrrp_sync_groups": [],
    "virtual_servers": [],
    "lvs_sync_daemon": None,
    "ipvs_table_services": [],
    "kernel": None,
}

AUTH_PASS_MAX = 8  # keepalived uses only the first 8 characters of auth_pass
NAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]+$")
IFACE_RE = re.compile(r"^[^\s/{}\"']{1,15}$")
# Text rendered into the config as is (scripts, paths): no newline, no braces, no '#'/'!' comments.
TEXT_RE = re.compile(r"^[^\n\r{}#!]*$")

INSTANCE_KEYS = {
    "name", "interface", "virtual_router_id", "state", "priority", "advert_int", "version", "unicast",
    "unicast_src_ip", "unicast_peers", "mcast_src_ip", "auth_type", "auth_pass", "virtual_ipaddresses",
    "virtual_ipaddresses_excluded", "track_interfaces", "track_scripts", "notify_master", "notify_backup",
    "notify_fault", "notify_stop", "notify", "nopreempt", "preempt_delay", "garp_master_delay",
    "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat", "garp_lower_prio_delay",
    "garp_lower_prio_repeat", "strict_mode", "accept", "dont_track_primary", "segment", "extra_options",
}
GARP_KEYS = ("garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
             "garp_lower_prio_delay", "garp_lower_prio_repeat")
NOTIFY_KEYS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
VIP_KEYS = {"address", "dev", "label", "scope", "brd", "no_track", "preferred_lft"}
SCRIPT_KEYS = {"name", "script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail"}
SYNC_GROUP_KEYS = {"name", "instances"} | set(NOTIFY_KEYS) - {"notify_stop"}
SYNC_DAEMON_KEYS = {"interface", "instance", "id", "maxlen", "port", "ttl", "group"}

VS_KEYS = {
    "address", "port", "protocol", "fwmark", "family", "scheduler", "scheduler_flags", "persistence_timeout",
    "persistence_netmask", "persistence_engine", "one_packet", "forwarding", "tunnel_type", "tunnel_port",
    "tunnel_checksum", "quorum", "hysteresis", "quorum_up", "quorum_down", "sorry_server", "inhibit_on_failure",
    "delay_loop", "connect_timeout", "retry", "delay_before_retry", "warmup", "alpha", "omega", "ha_suspend",
    "virtualhost", "checks", "real_servers", "extra_options",
}
RS_KEYS = {
    "address", "port", "weight", "forwarding", "tunnel_type", "tunnel_port", "tunnel_checksum", "upper_threshold",
    "lower_threshold", "inhibit_on_failure", "notify_up", "notify_down", "checks", "delay_loop", "connect_timeout",
    "retry", "delay_before_retry", "warmup", "alpha", "virtualhost",
}
SORRY_KEYS = {"address", "port", "forwarding", "tunnel_type", "tunnel_port", "tunnel_checksum", "inhibit"}
CHECK_TYPES = {"tcp": "TCP_CHECK", "http": "HTTP_GET", "ssl": "SSL_GET", "https": "SSL_GET", "misc": "MISC_CHECK",
               "tcp_check": "TCP_CHECK", "http_get": "HTTP_GET", "ssl_get": "SSL_GET", "misc_check": "MISC_CHECK"}
CHECK_COMMON = ("connect_ip", "connect_port", "bindto", "bind_port", "connect_timeout", "retry",
                "delay_before_retry", "warmup", "delay_loop", "alpha", "fwmark")
CHECK_KEYS = {
    "TCP_CHECK": {"type", *CHECK_COMMON},
    "HTTP_GET": {"type", "urls", "http_protocol", "fast_recovery", "virtualhost", *CHECK_COMMON},
    "SSL_GET": {"type", "urls", "http_protocol", "fast_recovery", "virtualhost", "enable_sni", *CHECK_COMMON},
    "MISC_CHECK": {"type", "misc_path", "misc_timeout", "misc_dynamic", "user", "alpha", "retry",
                   "delay_before_retry", "warmup", "delay_loop"},
}
URL_KEYS = {"path", "status_code", "digest", "virtualhost", "regex", "regex_no_match"}
FORWARDING_METHODS = {"nat": "NAT", "dr": "DR", "tunnel": "TUN"}
# Tunnel types and the Linux release that brought them to IPVS (keepalived.conf(5), ipvsadm(8)).
TUNNEL_MIN_RELEASE = {"gue": (5, 2), "gre": (5, 3)}
GUE_CHECKSUM_MIN_RELEASE = (5, 3)


class PreflightError(ValueError):
    """The settings cannot be used; ``problems`` lists every message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Problems:
    """Collects messages 'host H, OBJECT, field F: problem' (each once, in order)."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, host: str, obj: str, field: str, message: str) -> None:
        parts = ["host %s" % host]
        if obj:
            parts.append(obj)
        if field:
            parts.append("field %s" % field)
        item = (host, "%s: %s" % (", ".join(parts), message))
        if item not in self.found:
            self.found.append(item)

    def of(self, hosts: t.Container[str]) -> list[str]:
        return [text for host, text in self.found if host in hosts]


class _Bad(ValueError):
    """A value problem inside a normalizer; ``field`` is relative to the object."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- small validators ------------------------------------------------------------------------


def _int(raw: t.Any, field: str, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise _Bad(field, "%r is not an integer" % (raw,))
    try:
        value = raw if isinstance(raw, int) else int(str(raw).strip(), 10)
    except ValueError:
        raise _Bad(field, "%r is not an integer" % (raw,)) from None
    if not low <= value <= high:
        raise _Bad(field, "%d is out of range %d..%d" % (value, low, high))
    return value


def _number(raw: t.Any, field: str, low: float, high: float) -> int | float:
    if isinstance(raw, bool):
        raise _Bad(field, "%r is not a number" % (raw,))
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise _Bad(field, "%r is not a number" % (raw,)) from None
    if not low <= value <= high:
        raise _Bad(field, "%s is out of range %s..%s" % (_fmt_num(value), _fmt_num(low), _fmt_num(high)))
    return int(value) if value == int(value) else value


def _fmt_num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _bool(raw: t.Any, field: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("yes", "true", "on", "1"):
        return True
    if text in ("no", "false", "off", "0"):
        return False
    raise _Bad(field, "%r is not a boolean" % (raw,))


def _text(raw: t.Any, field: str) -> str:
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise _Bad(field, "must be a string")
    text = str(raw).strip()
    if not text:
        raise _Bad(field, "must not be empty")
    if not TEXT_RE.match(text):
        raise _Bad(field, "must not contain newlines, braces, '#' or '!'")
    return text


def _quoted(raw: t.Any, field: str) -> str:
    """A script or path that keepalived takes as one (quoted) string."""
    text = _text(raw, field)
    if '"' in text:
        raise _Bad(field, "must not contain double quotes")
    return text


def _name(raw: t.Any, field: str) -> str:
    text = _text(raw, field)
    if not NAME_RE.match(text):
        raise _Bad(field, "%r is not a valid name (letters, digits, '_', '.', ':', '@', '-')" % text)
    return text


def _iface(raw: t.Any, field: str) -> str:
    text = _text(raw, field)
    if not IFACE_RE.match(text):
        raise _Bad(field, "%r is not an interface name" % text)
    return text


def _list(raw: t.Any, field: str) -> list:
    if raw is None:
        return []
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        raise _Bad(field, "must be a list")
    return list(raw)


def _dict(raw: t.Any, field: str, known: set[str] | None = None) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, t.Mapping):
        raise _Bad(field, "must be a dictionary")
    if known is not None:
        for key in raw:
            if key not in known:
                raise _Bad(_join(field, str(key)), "unknown option")
    return dict(raw)


def _join(prefix: str, name: str) -> str:
    return "%s.%s" % (prefix, name) if prefix else name


def _address(raw: t.Any, field: str) -> str:
    text = str(raw).strip() if raw is not None else ""
    try:
        return str(ipaddress.ip_address(text.split("/", 1)[0]))
    except ValueError:
        raise _Bad(field, "%r is not an IPv4 or IPv6 address" % (raw,)) from None


def _interface(raw: t.Any, field: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    text = str(raw).strip() if raw is not None else ""
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise _Bad(field, "%r is not an address (with an optional /prefix)" % (raw,)) from None


def _release(text: t.Any) -> tuple[int, ...]:
    found = re.match(r"^(\d+)\.(\d+)", str(text or ""))
    return (int(found.group(1)), int(found.group(2))) if found else ()


def secret_variable(index: int, name: str) -> str:
    """keepalived parameter name that carries the auth_pass of instance ``name``."""
    return "LVS_AUTH_%d_%s" % (index, re.sub(r"[^A-Za-z0-9_]", "_", name).upper())


# -- normalizers ----------------------------------------------------------------------------------


def _vip(raw: t.Any, field: str) -> dict[str, t.Any]:
    item = {"address": raw} if isinstance(raw, str) else _dict(raw, field, VIP_KEYS)
    if item.get("address") in (None, ""):
        raise _Bad(_join(field, "address") if not isinstance(raw, str) else field, "a virtual address is required")
    iface = _interface(item["address"], field if isinstance(raw, str) else _join(field, "address"))
    addr = iface.ip
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
        raise _Bad(field, "%s is not a usable unicast address" % addr)
    explicit = "/" in str(item["address"])
    vip = {"address": str(addr), "prefix": iface.network.prefixlen if explicit else None,
           "family": "ipv6" if addr.version == 6 else "ipv4",
           "network": str(iface.network) if explicit else None}
    for key in ("dev", "label", "scope", "brd", "preferred_lft"):
        if item.get(key) not in (None, ""):
            vip[key] = _text(item[key], _join(field, key))
    vip["no_track"] = _bool(item.get("no_track", False), _join(field, "no_track"))
    return vip


def _tracked(raw: t.Any, field: str, what: str) -> dict[str, t.Any]:
    item = {"name": raw} if isinstance(raw, str) else _dict(raw, field, {"name", "weight", "reverse"})
    if item.get("name") in (None, ""):
        raise _Bad(field, "a %s name is required" % what)
    out: dict[str, t.Any] = {"name": _iface(item["name"], field) if what == "interface" else _name(item["name"], field)}
    if item.get("weight") is not None:
        out["weight"] = _int(item["weight"], _join(field, "weight"), -253, 253)
    if item.get("reverse") is not None and _bool(item["reverse"], _join(field, "reverse")):
        out["reverse"] = True
    return out


def _normalize_instance(raw: t.Any, p: _Problems, host: str, index: int) -> dict[str, t.Any] | None:
    field = "keepalived_vrrp_instances[%d]" % index
    if not isinstance(raw, t.Mapping):
        p.add(host, "", field, "must be a dictionary")
        return None
    name = raw.get("name")
    try:
        name = _name(name, "name")
    except _Bad:
        p.add(host, "", field + ".name", "every VRRP instance needs a name (letters, digits, '_', '.', ':', '@', '-')")
        return None
    obj = "instance %s" % name
    inst: dict[str, t.Any] = {"name": name, "index": index}

    def bad(exc: _Bad) -> None:
        p.add(host, obj, exc.field, str(exc))

    for key in raw:
        if key not in INSTANCE_KEYS:
            p.add(host, obj, str(key), "unknown option")
    try:
        if raw.get("interface") in (None, ""):
            raise _Bad("interface", "is required")
        inst["interface"] = _iface(raw["interface"], "interface")
    except _Bad as exc:
        bad(exc)
    try:
        if raw.get("virtual_router_id") in (None, ""):
            raise _Bad("virtual_router_id", "is required (1..255)")
        inst["virtual_router_id"] = _int(raw["virtual_router_id"], "virtual_router_id", 1, 255)
    except _Bad as exc:
        bad(exc)
    for key, conv in (
        ("priority", lambda v: _int(v, "priority", 1, 255)),
        ("advert_int", lambda v: _number(v, "advert_int", 0.01, 255)),
        ("version", lambda v: _int(v, "version", 2, 3)),
        ("preempt_delay", lambda v: _number(v, "preempt_delay", 0, 1000)),
    ):
        try:
            inst[key] = None if raw.get(key) in (None, "") else conv(raw[key])
        except _Bad as exc:
            bad(exc)
    if inst.get("advert_int") is None:
        inst["advert_int"] = 1
    try:
        state = raw.get("state")
        inst["state"] = None if state in (None, "") else str(state).strip().upper()
        if inst["state"] not in (None, "MASTER", "BACKUP"):
            raise _Bad("state", "%r is not one of MASTER, BACKUP" % (state,))
    except _Bad as exc:
        bad(exc)
    for key in ("unicast", "nopreempt", "dont_track_primary"):
        try:
            inst[key] = _bool(raw.get(key, key == "unicast"), key)
        except _Bad as exc:
            bad(exc)
    for key in ("strict_mode", "accept"):
        try:
            inst[key] = None if raw.get(key) is None else _bool(raw[key], key)
        except _Bad as exc:
            bad(exc)
    for key in GARP_KEYS:
        try:
            inst[key] = None if raw.get(key) in (None, "") else _int(raw[key], key, 0, 86400)
        except _Bad as exc:
            bad(exc)
    for key in NOTIFY_KEYS:
        try:
            inst[key] = None if raw.get(key) in (None, "") else _quoted(raw[key], key)
        except _Bad as exc:
            bad(exc)
    try:
        inst["segment"] = None if raw.get("segment") in (None, "") else _text(raw["segment"], "segment")
    except _Bad as exc:
        bad(exc)
    try:
        inst["unicast_src_ip"] = None if raw.get("unicast_src_ip") in (None, "") else _address(raw["unicast_src_ip"], "unicast_src_ip")
    except _Bad as exc:
        bad(exc)
    try:
        inst["mcast_src_ip"] = None if raw.get("mcast_src_ip") in (None, "") else _address(raw["mcast_src_ip"], "mcast_src_ip")
    except _Bad as exc:
        bad(exc)
    inst["unicast_peers"] = None
    if raw.get("unicast_peers") is not None:
        try:
            peers = []
            for i, peer in enumerate(_list(raw["unicast_peers"], "unicast_peers")):
                peers.append(_address(peer, "unicast_peers[%d]" % i))
            inst["unicast_peers"] = peers
        except _Bad as exc:
            bad(exc)
    # Authentication: the password is never part of a message.
    inst["auth_type"] = None
    inst["auth_pass"] = None
    if raw.get("auth_pass") not in (None, ""):
        secret = raw["auth_pass"]
        if not isinstance(secret, (str, int)) or isinstance(secret, bool):
            p.add(host, obj, "auth_pass", "must be a string")
        else:
            secret = str(secret)
            if len(secret) > AUTH_PASS_MAX:
                p.add(host, obj, "auth_pass", "is %d characters long; keepalived uses only the first %d, so directors "
                      "whose passwords differ after that would still agree: use at most %d characters"
                      % (len(secret), AUTH_PASS_MAX, AUTH_PASS_MAX))
            elif not re.match(r"^[\x21-\x7e]+$", secret) or '"' in secret or "$" in secret or "#" in secret or "!" in secret:
                p.add(host, obj, "auth_pass", "must be printable ASCII without spaces, quotes, '$', '#' or '!'")
            inst["auth_pass"] = secret
        try:
            auth_type = str(raw.get("auth_type") or "PASS").strip().upper()
            if auth_type not in ("PASS", "AH"):
                raise _Bad("auth_type", "%r is not one of PASS, AH" % raw.get("auth_type"))
            inst["auth_type"] = auth_type
        except _Bad as exc:
            bad(exc)
    elif raw.get("auth_type") not in (None, ""):
        p.add(host, obj, "auth_type", "is set but auth_pass is not")
    vips = []
    for key in ("virtual_ipaddresses", "virtual_ipaddresses_excluded"):
        try:
            items = _list(raw.get(key), key)
        except _Bad as exc:
            bad(exc)
            items = []
        for i, item in enumerate(items):
            try:
                vip = _vip(item, "%s[%d]" % (key, i))
                vip["field"] = "%s[%d]" % (key, i)
                vip["excluded"] = key.endswith("excluded")
                vips.append(vip)
            except _Bad as exc:
                bad(exc)
    seen_vips: dict[str, str] = {}
    for vip in vips:
        if vip["address"] in seen_vips:
            p.add(host, obj, vip["field"], "%s is also %s" % (vip["address"], seen_vips[vip["address"]]))
        seen_vips.setdefault(vip["address"], vip["field"])
    # keepalived: the addresses in virtual_ipaddress share one family (the instance's); others
    # go to virtual_ipaddress_excluded, which is what we do with them.
    main = [v for v in vips if not v["excluded"]]
    inst["family"] = main[0]["family"] if main else (vips[0]["family"] if vips else "ipv4")
    inst["vips"] = [v for v in main if v["family"] == inst["family"]]
    inst["vips_excluded"] = [v for v in vips if v not in inst["vips"]]
    inst["all_vips"] = vips
    for key, what in (("track_interfaces", "interface"), ("track_scripts", "script")):
        inst[key] = []
        try:
            for i, item in enumerate(_list(raw.get(key), key)):
                inst[key].append(_tracked(item, "%s[%d]" % (key, i), what))
        except _Bad as exc:
            bad(exc)
    inst["extra_options"] = []
    try:
        for i, line in enumerate(_list(raw.get("extra_options"), "extra_options")):
            inst["extra_options"].append(_text(line, "extra_options[%d]" % i))
    except _Bad as exc:
        bad(exc)
    return inst


def _normalize_check(raw: t.Any, field: str) -> dict[str, t.Any]:
    item = _dict(raw, field)
    kind = str(item.get("type") or "").strip()
    ctype = CHECK_TYPES.get(kind.lower(), kind.upper())
    if ctype not in CHECK_KEYS:
        raise _Bad(_join(field, "type"), "%r is not one of TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK" % (item.get("type"),))
    for key in item:
        if key not in CHECK_KEYS[ctype]:
            raise _Bad(_join(field, key), "unknown option for %s" % ctype)
    check: dict[str, t.Any] = {"type": ctype, "options": []}
    numbers = {"connect_timeout": (0.001, 86400), "delay_before_retry": (0, 86400), "warmup": (0, 86400),
               "delay_loop": (0.001, 86400), "misc_timeout": (1, 86400)}
    for key in sorted(CHECK_KEYS[ctype] - {"type", "urls", "misc_path", "misc_dynamic", "user"}):
        if item.get(key) in (None, ""):
            continue
        sub = _join(field, key)
        if key in ("connect_ip", "bindto"):
            value = _address(item[key], sub)
        elif key in ("connect_port", "bind_port"):
            value = _int(item[key], sub, 1, 65535)
        elif key == "retry":
            value = _int(item[key], sub, 0, 65535)
        elif key == "fwmark":
            value = _int(item[key], sub, 1, 2 ** 32 - 1)
        elif key in numbers:
            value = _number(item[key], sub, *numbers[key])
        elif key in ("alpha", "fast_recovery", "enable_sni"):
            if not _bool(item[key], sub):
                continue
            value = None
        elif key == "http_protocol":
            value = str(item[key])
            if value not in ("1.0", "1.0C", "1.1"):
                raise _Bad(sub, "%r is not one of 1.0, 1.0C, 1.1" % value)
        else:
            value = _text(item[key], sub)
        check["options"].append((key, value))
    if ctype in ("HTTP_GET", "SSL_GET"):
        urls = _list(item.get("urls"), _join(field, "urls"))
        if not urls:
            raise _Bad(_join(field, "urls"), "%s needs at least one url (path, and status_code and/or digest)" % ctype)
        check["urls"] = []
        for i, url_raw in enumerate(urls):
            sub = "%s.urls[%d]" % (field, i)
            url = _dict(url_raw, sub, URL_KEYS)
            if url.get("path") in (None, ""):
                raise _Bad(_join(sub, "path"), "is required")
            out: dict[str, t.Any] = {"path": _text(url["path"], _join(sub, "path"))}
            if " " in out["path"]:
                raise _Bad(_join(sub, "path"), "must not contain spaces")
            if url.get("digest") not in (None, ""):
                digest = str(url["digest"]).strip().lower()
                if not re.match(r"^[0-9a-f]{32}$", digest):
                    raise _Bad(_join(sub, "digest"), "must be an MD5 digest (32 hex digits, see genhash(1))")
                out["digest"] = digest
            codes = url.get("status_code")
            if codes not in (None, ""):
                codes = codes if isinstance(codes, (list, tuple)) else str(codes).split()
                parsed = []
                for code in codes:
                    text = str(code).strip()
                    if not re.match(r"^[1-5]\d\d(-[1-5]\d\d)?$", text):
                        raise _Bad(_join(sub, "status_code"), "%r is not an HTTP status code or range (200, 200-299)" % text)
                    parsed.append(text)
                out["status_code"] = " ".join(parsed)
            for key in ("virtualhost", "regex"):
                if url.get(key) not in (None, ""):
                    out[key] = _quoted(url[key], _join(sub, key))
            if url.get("regex_no_match") is not None and _bool(url["regex_no_match"], _join(sub, "regex_no_match")):
                out["regex_no_match"] = True
            check["urls"].append(out)
    if ctype == "MISC_CHECK":
        if item.get("misc_path") in (None, ""):
            raise _Bad(_join(field, "misc_path"), "MISC_CHECK needs misc_path (the script to run)")
        check["misc_path"] = _quoted(item["misc_path"], _join(field, "misc_path"))
        check["misc_dynamic"] = _bool(item.get("misc_dynamic", False), _join(field, "misc_dynamic"))
        if item.get("user") not in (None, ""):
            check["user"] = _text(item["user"], _join(field, "user"))
    return check


def _lvs_method(rs: t.Mapping[str, t.Any]) -> str:
    method = FORWARDING_METHODS[rs["forwarding"]]
    if rs["forwarding"] != "tunnel":
        return method
    words = [method, "type", rs["tunnel_type"]]
    if rs["tunnel_type"] == "gue":
        words += ["port", str(rs["tunnel_port"])]
    if rs.get("tunnel_checksum") and rs["tunnel_type"] != "ipip":
        words.append(rs["tunnel_checksum"])
    return " ".join(words)


VS_NUMBERS = {"delay_loop": (0.001, 86400), "connect_timeout": (0.001, 86400), "delay_before_retry": (0, 86400),
              "warmup": (0, 86400)}


def _timers(item: t.Mapping[str, t.Any], field: str, keys: t.Iterable[str]) -> list[tuple[str, t.Any]]:
    out = []
    for key in keys:
        if item.get(key) in (None, ""):
            continue
        sub = _join(field, key)
        if key == "retry":
            out.append((key, _int(item[key], sub, 0, 65535)))
        elif key in VS_NUMBERS:
            out.append((key, _number(item[key], sub, *VS_NUMBERS[key])))
        elif key in ("alpha", "omega", "ha_suspend"):
            if _bool(item[key], sub):
                out.append((key, None))
        elif key == "virtualhost":
            out.append((key, _text(item[key], sub)))
    return out


def _normalize_virtual_server(raw: t.Any, p: _Problems, host: str, index: int) -> dict[str, t.Any] | None:
    field = "keepalived_virtual_servers[%d]" % index
    if not isinstance(raw, t.Mapping):
        p.add(host, "", field, "must be a dictionary")
        return None
    service_keys = ("address", "port", "protocol", "fwmark", "family", "scheduler", "scheduler_flags",
                    "persistence_timeout", "persistence_netmask", "persistence_engine", "one_packet")
    service_raw = {k: raw.get(k) for k in service_keys if raw.get(k) is not None}
    try:
        svc = normalize_service(service_raw, "", with_real_servers=False)
    except IPVSValidationError as exc:
        if raw.get("fwmark") not in (None, ""):
            label = "fwmark %s" % raw.get("fwmark")
        else:
            label = "%s %s:%s" % (raw.get("protocol") or "tcp", raw.get("address"), raw.get("port"))
        p.add(host, "virtual_server %s" % label, exc.field, _ipvs_message(exc))
        return None
    obj = "virtual_server %s" % service_label(svc)
    vs: dict[str, t.Any] = {"service": svc, "label": service_label(svc), "index": index, "object": obj}
    for key in raw:
        if key not in VS_KEYS:
            p.add(host, obj, str(key), "unknown option")
    if svc["fwmark"] is not None:
        vs["head"] = "fwmark %d" % svc["fwmark"]
        vs["protocol"] = None
    else:
        vs["head"] = "%s %d" % (svc["address"], svc["port"])
        vs["protocol"] = svc["protocol"].upper()
    default_fwd = {k: raw.get(k) for k in ("forwarding", "tunnel_type", "tunnel_port", "tunnel_checksum")}
    if default_fwd["forwarding"] in (None, ""):
        default_fwd["forwarding"] = "nat"  # keepalived's default lvs_method
    vs["forwarding"] = str(default_fwd["forwarding"])
    try:
        vs["options"] = _timers(raw, "", ("delay_loop", "connect_timeout", "retry", "delay_before_retry", "warmup",
                                          "alpha", "omega", "ha_suspend", "virtualhost"))
        for key, low in (("quorum", 1), ("hysteresis", 0)):
            if raw.get(key) not in (None, ""):
                vs["options"].append((key, _int(raw[key], key, low, 2 ** 31 - 1)))
        for key in ("quorum_up", "quorum_down"):
            if raw.get(key) not in (None, ""):
                vs["options"].append((key, '"%s"' % _quoted(raw[key], key)))
        vs["inhibit_on_failure"] = _bool(raw.get("inhibit_on_failure", False), "inhibit_on_failure")
        vs["extra_options"] = [_text(x, "extra_options[%d]" % i) for i, x in enumerate(_list(raw.get("extra_options"), "extra_options"))]
        default_checks = [_normalize_check(c, "checks[%d]" % i) for i, c in enumerate(_list(raw.get("checks"), "checks"))]
    except _Bad as exc:
        p.add(host, obj, exc.field, str(exc))
        return None
    vs["sorry_server"] = None
    if raw.get("sorry_server") not in (None, "", {}):
        try:
            sorry = _dict(raw["sorry_server"], "sorry_server", SORRY_KEYS)
            keys = ("address", "port", "forwarding", "tunnel_type", "tunnel_port", "tunnel_checksum")
            model = {k: sorry.get(k, default_fwd.get(k)) for k in keys}
            rs = normalize_real_server({k: v for k, v in model.items() if v is not None}, svc, "sorry_server")
            vs["sorry_server"] = {"head": _rs_head(rs, svc), "lvs_method": _lvs_method(rs),
                                  "inhibit": _bool(sorry.get("inhibit", False), "sorry_server.inhibit"), "model": rs}
        except IPVSValidationError as exc:
            p.add(host, obj, exc.field, _ipvs_message(exc))
        except _Bad as exc:
            p.add(host, obj, exc.field, str(exc))
    vs["real_servers"] = []
    seen: dict[tuple, int] = {}
    try:
        items = _list(raw.get("real_servers"), "real_servers")
    except _Bad as exc:
        p.add(host, obj, exc.field, str(exc))
        items = []
    for i, rs_raw in enumerate(items):
        sub = "real_servers[%d]" % i
        if not isinstance(rs_raw, t.Mapping):
            p.add(host, obj, sub, "must be a dictionary")
            continue
        unknown = [k for k in rs_raw if k not in RS_KEYS]
        for key in unknown:
            p.add(host, obj, _join(sub, str(key)), "unknown option")
        model = {k: rs_raw.get(k) for k in ("address", "port", "weight", "upper_threshold", "lower_threshold")}
        for key in ("forwarding", "tunnel_type", "tunnel_port", "tunnel_checksum"):
            own = rs_raw.get(key)
            # Tunnel details inherit only along with the forwarding method.
            inherit = rs_raw.get("forwarding") in (None, "") or key == "forwarding"
            model[key] = own if own not in (None, "") else (default_fwd.get(key) if inherit else None)
        try:
            rs = normalize_real_server({k: v for k, v in model.items() if v is not None}, svc, sub)
        except IPVSValidationError as exc:
            p.add(host, obj, exc.field, _ipvs_message(exc))
            continue
        key = real_server_key(rs)
        if key in seen:
            p.add(host, obj, sub, "real server %s is also real_servers[%d]" % (_rs_head(rs, svc), seen[key]))
            continue
        seen[key] = i
        try:
            out = {"model": rs, "head": _rs_head(rs, svc), "weight": rs["weight"], "lvs_method": _lvs_method(rs),
                   "uthreshold": rs["upper_threshold"], "lthreshold": rs["lower_threshold"],
                   "options": _timers(rs_raw, sub, ("delay_loop", "connect_timeout", "retry", "delay_before_retry",
                                                    "warmup", "alpha", "virtualhost")),
                   "notify_up": None, "notify_down": None, "inhibit_on_failure": None}
            if rs_raw.get("inhibit_on_failure") is not None:
                out["inhibit_on_failure"] = _bool(rs_raw["inhibit_on_failure"], _join(sub, "inhibit_on_failure"))
            for key_n in ("notify_up", "notify_down"):
                if rs_raw.get(key_n) not in (None, ""):
                    out[key_n] = _quoted(rs_raw[key_n], _join(sub, key_n))
            if rs_raw.get("checks") is not None:
                out["checks"] = [_normalize_check(c, "%s.checks[%d]" % (sub, j))
                                 for j, c in enumerate(_list(rs_raw["checks"], _join(sub, "checks")))]
            else:
                out["checks"] = default_checks
            vs["real_servers"].append(out)
        except _Bad as exc:
            p.add(host, obj, exc.field, str(exc))
    return vs


def _ipvs_message(exc: IPVSValidationError) -> str:
    text = str(exc)
    prefix = "%s: " % exc.field
    return text[len(prefix):] if exc.field and text.startswith(prefix) else text


def _rs_head(rs: t.Mapping[str, t.Any], svc: t.Mapping[str, t.Any]) -> str:
    if svc["fwmark"] is not None and not rs["port"]:
        return rs["address"]
    return "%s %d" % (rs["address"], rs["port"])


def _normalize_host(host: str, record: t.Mapping[str, t.Any], p: _Problems) -> dict[str, t.Any]:
    """One director's settings in canonical form (problems go to ``p``)."""
    rec = dict(RECORD_DEFAULTS)
    rec.update({k: v for k, v in record.items() if k in RECORD_KEYS and v is not None})
    cfg: dict[str, t.Any] = {"host": host, "group": str(rec["group"] or ""), "in_play": bool(record.get("in_play", True))}
    cfg["group_hosts"] = [str(h) for h in (rec["group_hosts"] or [])]
    if host not in cfg["group_hosts"]:
        # Priorities and peers come from the group: without it every director would think it is alone.
        p.add(host, "", "keepalived_group", "%s is not in the inventory group %r: set keepalived_group to the group "
              "of the directors that share the VRRP instances" % (host, cfg["group"]))
        cfg["group_hosts"].append(host)
    cfg["index"] = cfg["group_hosts"].index(host)
    cfg["address"] = None
    cfg["address_network"] = None
    # A host name (ansible_host often is one) is no VRRP address: unknown, not wrong.
    if rec["address"] not in (None, "") and re.match(r"^[0-9A-Fa-f:.]+(/\d+)?$", str(rec["address"]).strip()):
        try:
            iface = _interface(rec["address"], "keepalived_address")
            cfg["address"] = str(iface.ip)
            if "/" in str(rec["address"]):
                cfg["address_network"] = str(iface.network)
        except _Bad as exc:
            p.add(host, "", exc.field, str(exc))
    cfg["static_addresses"] = []
    try:
        for i, addr in enumerate(_list(rec["static_addresses"], "keepalived_static_addresses")):
            cfg["static_addresses"].append(_address(addr, "keepalived_static_addresses[%d]" % i))
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
    try:
        cfg["router_id"] = _name(rec["router_id"] or host, "keepalived_router_id")
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
        cfg["router_id"] = None
    for key, low, high in (("priority_base", 1, 254), ("priority_step", 0, 253)):
        try:
            cfg[key] = _int(rec[key], "keepalived_" + key, low, high)
        except _Bad as exc:
            p.add(host, "", exc.field, str(exc))
            cfg[key] = RECORD_DEFAULTS[key]
    try:
        cfg["vrrp_strict"] = _bool(rec["vrrp_strict"], "keepalived_vrrp_strict")
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
        cfg["vrrp_strict"] = False
    cfg["global_defs"] = []
    try:
        for key, value in sorted(_dict(rec["global_defs"], "keepalived_global_defs").items()):
            if key in ("router_id", "vrrp_strict", "lvs_sync_daemon"):
                raise _Bad("keepalived_global_defs.%s" % key, "set it with keepalived_%s instead" % key)
            _name(key, "keepalived_global_defs")
            if value is True or value is None:
                cfg["global_defs"].append((str(key), None))
            elif value is not False:
                cfg["global_defs"].append((str(key), _text(value, "keepalived_global_defs.%s" % key)))
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))

    cfg["vrrp_scripts"] = []
    script_names: set[str] = set()
    try:
        scripts = _list(rec["vrrp_scripts"], "keepalived_vrrp_scripts")
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
        scripts = []
    for i, raw in enumerate(scripts):
        field = "keepalived_vrrp_scripts[%d]" % i
        try:
            item = _dict(raw, field, SCRIPT_KEYS)
            name = _name(item.get("name"), _join(field, "name"))
            if name in script_names:
                raise _Bad(_join(field, "name"), "vrrp_script %s is defined twice" % name)
            if item.get("script") in (None, ""):
                raise _Bad(_join(field, "script"), "is required")
            script = {"name": name, "script": _quoted(item["script"], _join(field, "script")), "options": []}
            for key, low, high in (("interval", 1, 86400), ("timeout", 1, 86400), ("weight", -253, 253),
                                   ("rise", 1, 65535), ("fall", 1, 65535)):
                if item.get(key) not in (None, ""):
                    script["options"].append((key, _int(item[key], _join(field, key), low, high)))
            if item.get("user") not in (None, ""):
                script["options"].append(("user", _text(item["user"], _join(field, "user"))))
            if item.get("init_fail") is not None and _bool(item["init_fail"], _join(field, "init_fail")):
                script["options"].append(("init_fail", None))
            script_names.add(name)
            cfg["vrrp_scripts"].append(script)
        except _Bad as exc:
            p.add(host, "", exc.field, str(exc))

    cfg["instances"] = []
    try:
        raw_instances = _list(rec["vrrp_instances"], "keepalived_vrrp_instances")
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
        raw_instances = []
    names: set[str] = set()
    for i, raw in enumerate(raw_instances):
        inst = _normalize_instance(raw, p, host, i)
        if inst is None:
            continue
        if inst["name"] in names:
            p.add(host, "instance %s" % inst["name"], "name", "is defined twice in keepalived_vrrp_instances")
            continue
        names.add(inst["name"])
        for j, tracked in enumerate(inst["track_scripts"]):
            if tracked["name"] not in script_names:
                p.add(host, "instance %s" % inst["name"], "track_scripts[%d]" % j,
                      "%s is not defined in keepalived_vrrp_scripts" % tracked["name"])
        for j, tracked in enumerate(inst["track_interfaces"]):
            if tracked["name"] == inst.get("interface"):
                p.add(host, "instance %s" % inst["name"], "track_interfaces[%d]" % j,
                      "%s is the instance's own interface, which keepalived always tracks (it would ignore this entry)"
                      % tracked["name"])
        cfg["instances"].append(inst)

    cfg["sync_groups"] = []
    grouped: dict[str, str] = {}
    try:
        groups = _list(rec["vrrp_sync_groups"], "keepalived_vrrp_sync_groups")
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
        groups = []
    for i, raw in enumerate(groups):
        field = "keepalived_vrrp_sync_groups[%d]" % i
        try:
            item = _dict(raw, field, SYNC_GROUP_KEYS)
            name = _name(item.get("name"), _join(field, "name"))
        except _Bad as exc:
            p.add(host, "", exc.field, str(exc))
            continue
        obj = "sync_group %s" % name
        members = []
        try:
            for j, member in enumerate(_list(item.get("instances"), "instances")):
                member = _name(member, "instances[%d]" % j)
                if member not in names:
                    raise _Bad("instances[%d]" % j, "%s is not one of this director's keepalived_vrrp_instances" % member)
                if member in grouped:
                    raise _Bad("instances[%d]" % j, "%s is already in sync_group %s (an instance belongs to one group)"
                               % (member, grouped[member]))
                grouped[member] = name
                members.append(member)
            if len(members) < 2:
                raise _Bad("instances", "a sync group needs at least two instances")
            weights = {sc["name"]: dict(sc["options"]).get("weight", 0) for sc in cfg["vrrp_scripts"]}
            for member in members:
                inst = next(i for i in cfg["instances"] if i["name"] == member)
                for key in ("track_scripts", "track_interfaces"):
                    for j, tracked in enumerate(inst[key]):
                        weight = tracked.get("weight", weights.get(tracked["name"], 0) if key == "track_scripts" else 0)
                        if weight:
                            p.add(host, "instance %s" % member, "%s[%d]" % (key, j),
                                  "weight %d: keepalived ignores tracking weights of instances in a sync group "
                                  "(sync_group %s); use weight 0 (fault on failure)" % (weight, name))
            group = {"name": name, "instances": members}
            for key in set(NOTIFY_KEYS) - {"notify_stop"}:
                group[key] = None if item.get(key) in (None, "") else _quoted(item[key], key)
            cfg["sync_groups"].append(group)
        except _Bad as exc:
            p.add(host, obj, exc.field, str(exc))

    cfg["virtual_servers"] = []
    try:
        raw_vs = _list(rec["virtual_servers"], "keepalived_virtual_servers")
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
        raw_vs = []
    seen_vs: dict[tuple, int] = {}
    for i, raw in enumerate(raw_vs):
        vs = _normalize_virtual_server(raw, p, host, i)
        if vs is None:
            continue
        key = service_key(vs["service"])
        if key in seen_vs:
            p.add(host, vs["object"], "", "is also keepalived_virtual_servers[%d]" % seen_vs[key])
            continue
        seen_vs[key] = i
        cfg["virtual_servers"].append(vs)

    cfg["lvs_sync_daemon"] = None
    if rec["lvs_sync_daemon"] not in (None, {}, ""):
        obj = "lvs_sync_daemon"
        try:
            item = _dict(rec["lvs_sync_daemon"], "", SYNC_DAEMON_KEYS)
            if item.get("interface") in (None, ""):
                raise _Bad("interface", "is required (the interface the sync messages use)")
            daemon: dict[str, t.Any] = {"interface": _iface(item["interface"], "interface"), "instance": None}
            if item.get("instance") not in (None, ""):
                daemon["instance"] = _name(item["instance"], "instance")
                if daemon["instance"] not in names:
                    raise _Bad("instance", "%s is not one of this director's keepalived_vrrp_instances" % daemon["instance"])
            for key, low, high in (("id", 0, 255), ("maxlen", 1, 65507), ("port", 1, 65535), ("ttl", 1, 255)):
                daemon[key] = None if item.get(key) in (None, "") else _int(item[key], key, low, high)
            daemon["group"] = None
            if item.get("group") not in (None, ""):
                daemon["group"] = _address(item["group"], "group")
                if not ipaddress.ip_address(daemon["group"]).is_multicast:
                    raise _Bad("group", "%s is not a multicast address" % daemon["group"])
            cfg["lvs_sync_daemon"] = daemon
        except _Bad as exc:
            p.add(host, obj, exc.field, str(exc))

    cfg["ipvs_table_services"] = []
    try:
        for i, raw in enumerate(_list(rec["ipvs_table_services"], "keepalived_ipvs_table_services")):
            field = "keepalived_ipvs_table_services[%d]" % i
            item = _dict(raw, field)
            ident = {k: item.get(k) for k in ("address", "port", "protocol", "fwmark", "family") if item.get(k) is not None}
            if ident.get("fwmark") in (None, "") and ident.get("port") in (None, ""):
                ident["port"] = 0
            try:
                cfg["ipvs_table_services"].append(service_key(normalize_service(dict(ident, persistence_timeout=1), field, False)))
            except IPVSValidationError as exc:
                raise _Bad(exc.field, _ipvs_message(exc)) from None
    except _Bad as exc:
        p.add(host, "", exc.field, str(exc))
    cfg["kernel"] = rec["kernel"] if isinstance(rec["kernel"], t.Mapping) else None
    return cfg


# -- derived values ------------------------------------------------------------------------------------------


def _src_ip(cfg: t.Mapping[str, t.Any], inst: t.Mapping[str, t.Any]) -> str | None:
    return inst.get("unicast_src_ip") or cfg.get("address")


def _priority(cfg: t.Mapping[str, t.Any], inst: t.Mapping[str, t.Any]) -> int:
    if inst.get("priority") is not None:
        return int(inst["priority"])
    return max(1, cfg["priority_base"] - cfg["priority_step"] * cfg["index"])


def _members(cfgs: t.Mapping[str, dict], cfg: t.Mapping[str, t.Any], name: str) -> list[tuple[dict, dict]]:
    """(director, instance) pairs of instance ``name`` in the group of ``cfg``, in inventory order."""
    out = []
    for host in cfg["group_hosts"]:
        other = cfgs.get(host)
        if other is None or other["group"] != cfg["group"]:
            continue
        inst = next((i for i in other["instances"] if i["name"] == name), None)
        if inst is not None:
            out.append((other, inst))
    return out


def _derive(cfgs: t.Mapping[str, dict]) -> None:
    """Fill priority, state, unicast source and peers of every instance (in place)."""
    for cfg in cfgs.values():
        for inst in cfg["instances"]:
            inst["effective_priority"] = _priority(cfg, inst)
    for cfg in cfgs.values():
        for inst in cfg["instances"]:
            members = _members(cfgs, cfg, inst["name"])
            top = max((i["effective_priority"] for _director, i in members), default=inst["effective_priority"])
            if inst["state"] is not None:
                inst["effective_state"] = inst["state"]
            elif inst["nopreempt"] or inst["preempt_delay"] is not None:
                inst["effective_state"] = "BACKUP"  # keepalived ignores both unless the initial state is BACKUP
            else:
                inst["effective_state"] = "MASTER" if inst["effective_priority"] == top else "BACKUP"
            inst["effective_src_ip"] = _src_ip(cfg, inst) if inst["unicast"] else None
            src = inst["effective_src_ip"]
            if src and len(members) > 1:
                # The adverts' family is the unicast source's; VIPs of the other family are excluded ones.
                family = "ipv6" if ":" in src else "ipv4"
                if family != inst["family"] and any(v["family"] == family for v in inst["all_vips"]):
                    inst["family"] = family
                    inst["vips"] = [v for v in inst["all_vips"] if not v["excluded"] and v["family"] == family]
                    inst["vips_excluded"] = [v for v in inst["all_vips"] if v not in inst["vips"]]
            if not inst["unicast"]:
                inst["effective_peers"] = []
            elif inst["unicast_peers"] is not None:
                inst["effective_peers"] = list(inst["unicast_peers"])
            else:
                peers = []
                for other, other_inst in members:
                    if other["host"] == cfg["host"] or not other_inst["unicast"]:
                        continue
                    src = _src_ip(other, other_inst)
                    if src and src not in peers:
                        peers.append(src)
                inst["effective_peers"] = peers


# -- checks across the group ---------------------------------------------------------------------------------


def _segment(cfg: t.Mapping[str, t.Any], inst: t.Mapping[str, t.Any]) -> str:
    if inst["segment"]:
        return inst["segment"]
    src = _src_ip(cfg, inst)
    if cfg.get("address_network") and (not inst["unicast_src_ip"] or src == cfg["address"]):
        return cfg["address_network"]
    for vip in inst["vips"]:
        if vip["network"] and vip["prefix"] not in (32, 128):
            return vip["network"]
    return "interface %s of group %s" % (inst.get("interface"), cfg["group"] or cfg["host"])


def _check_instances(cfgs: t.Mapping[str, dict], p: _Problems) -> None:
    vrids: dict[tuple, list[tuple[str, str, str]]] = {}
    real_addresses: dict[str, tuple[str, str]] = {}
    for cfg in cfgs.values():
        for addr, why in ([(cfg["address"], "keepalived_address")] if cfg["address"] else []) + \
                [(a, "keepalived_static_addresses") for a in cfg["static_addresses"]] + \
                [(i["unicast_src_ip"], "unicast_src_ip of instance %s" % i["name"]) for i in cfg["instances"] if i["unicast_src_ip"]]:
            real_addresses.setdefault(addr, (cfg["host"], why))

    for host in sorted(cfgs):
        cfg = cfgs[host]
        if not cfg["in_play"]:
            continue
        strict_global = cfg["vrrp_strict"]
        per_host_vrid: dict[tuple, str] = {}
        for inst in cfg["instances"]:
            obj = "instance %s" % inst["name"]
            if "interface" not in inst or "virtual_router_id" not in inst:
                continue
            vrid = inst["virtual_router_id"]
            family = inst["family"]
            local = (inst["interface"], family, vrid)
            if local in per_host_vrid:
                p.add(host, obj, "virtual_router_id", "%d is also used by instance %s on %s (%s)"
                      % (vrid, per_host_vrid[local], inst["interface"], family))
            per_host_vrid.setdefault(local, inst["name"])
            vrids.setdefault((_segment(cfg, inst), family, vrid), []).append((cfg["group"] or host, inst["name"], host))

            members = _members(cfgs, cfg, inst["name"])
            version = inst["version"] or (3 if inst["family"] == "ipv6" else 2)
            if version == 2 and inst["advert_int"] != int(inst["advert_int"]):
                p.add(host, obj, "advert_int", "%s needs VRRP version 3 (set version: 3): version 2 advertises whole "
                      "seconds and keepalived would round it" % inst["advert_int"])
            # Exactly one highest priority.
            prios = [(o["host"], i["effective_priority"]) for o, i in members]
            top = max(pr for _name, pr in prios)
            leaders = [h for h, pr in prios if pr == top]
            if len(leaders) > 1 and host in leaders[1:]:
                p.add(host, obj, "priority", "%d ties with %s for the highest priority of instance %s: exactly one "
                      "director must have the highest priority" % (top, leaders[0], inst["name"]))
            if inst["effective_state"] == "MASTER" and inst["effective_priority"] != top:
                p.add(host, obj, "state", "MASTER, but priority %d is below %s's %d: only the highest-priority "
                      "director may start as MASTER" % (inst["effective_priority"], leaders[0], top))
            if inst["state"] == "MASTER" and inst["nopreempt"]:
                p.add(host, obj, "nopreempt", "needs state BACKUP (keepalived ignores nopreempt when the initial "
                      "state is MASTER)")
            if inst["state"] == "MASTER" and inst["preempt_delay"] is not None:
                p.add(host, obj, "preempt_delay", "needs state BACKUP (keepalived ignores preempt_delay when the "
                      "initial state is MASTER)")
            # The same instance must agree across its directors.
            first_host, first = members[0]
            if first_host["host"] != host:
                for key, label in (("virtual_router_id", "virtual_router_id"), ("advert_int", "advert_int"),
                                   ("version", "version"), ("auth_type", "auth_type")):
                    if inst.get(key) != first.get(key):
                        p.add(host, obj, label, "%s differs from %s on %s: every director of instance %s needs the same"
                              % (_show(inst.get(key)), _show(first.get(key)), first_host["host"], inst["name"]))
                if inst["auth_pass"] != first["auth_pass"] and inst["auth_pass"] is not None and first["auth_pass"] is not None:
                    p.add(host, obj, "auth_pass", "differs from the password of %s (not shown): every director of instance %s "
                          "needs the same" % (first_host["host"], inst["name"]))
                mine = sorted(v["address"] for v in inst["all_vips"])
                theirs = sorted(v["address"] for v in first["all_vips"])
                if mine != theirs:
                    p.add(host, obj, "virtual_ipaddresses", "%s differs from %s on %s: every director of instance %s "
                          "needs the same VIPs" % (", ".join(mine) or "(none)", ", ".join(theirs) or "(none)",
                                                   first_host["host"], inst["name"]))
                if inst["unicast"] != first["unicast"]:
                    p.add(host, obj, "unicast", "%s uses %s but %s uses %s: every director of instance %s must use the same"
                          % (host, "unicast" if inst["unicast"] else "multicast", first_host["host"],
                             "unicast" if first["unicast"] else "multicast", inst["name"]))
            # Unicast peers: known and symmetric.
            if inst["unicast"] and len(members) > 1:
                src = inst["effective_src_ip"]
                if not src:
                    p.add(host, obj, "unicast_src_ip", "unknown: set keepalived_address (or unicast_src_ip) for this "
                          "director, its peers need it")
                elif not inst["vips"] or inst["vips"][0]["family"] != ("ipv6" if ":" in src else "ipv4"):
                    family = "ipv6" if ":" in src else "ipv4"
                    p.add(host, obj, "virtual_ipaddresses", "no %s address, but the unicast source %s is %s: VRRP adverts "
                          "carry addresses of their own family; give the instance a unicast_src_ip and unicast_peers "
                          "of the VIPs' family, or unicast: false" % (family, src, family))
                else:
                    by_src = {i["effective_src_ip"]: (o, i) for o, i in members if i["effective_src_ip"]}
                    for j, peer in enumerate(inst["effective_peers"]):
                        field = "unicast_peers[%d]" % j if inst["unicast_peers"] is not None else "unicast_peers"
                        if (":" in peer) != (":" in src):
                            p.add(host, obj, field, "%s and the unicast source %s are of different address families"
                                  % (peer, src))
                            continue
                        if peer == src:
                            p.add(host, obj, field, "%s is this director's own address" % peer)
                            continue
                        if peer not in by_src:
                            p.add(host, obj, field, "%s is not the unicast address of any director of instance %s (%s)"
                                  % (peer, inst["name"], ", ".join("%s=%s" % (o["host"], a) for a, (o, _inst) in sorted(by_src.items()))))
                            continue
                        other, other_inst = by_src[peer]
                        if src not in other_inst["effective_peers"]:
                            p.add(host, obj, field, "%s (%s) does not list this director's %s among its unicast peers: "
                                  "peers must be symmetric" % (other["host"], peer, src))
            # VIPs must not be real addresses of a director.
            for vip in inst["all_vips"]:
                owner = real_addresses.get(vip["address"])
                if owner is not None:
                    p.add(host, obj, vip["field"], "%s is also a real address of director %s (%s): keepalived must own "
                          "the VIP, do not configure it statically" % (vip["address"], owner[0], owner[1]))
            # vrrp_strict and what it forbids.
            strict = inst["strict_mode"] if inst["strict_mode"] is not None else strict_global
            if strict:
                why = "vrrp_strict" if inst["strict_mode"] is None else "strict_mode"
                if inst["unicast"] and inst["effective_peers"]:
                    p.add(host, obj, "unicast_peers", "not allowed with %s (strict VRRP is multicast only): set unicast: false" % why)
                if inst["auth_pass"] is not None:
                    p.add(host, obj, "auth_pass", "authentication is not allowed with %s" % why)
                if inst["preempt_delay"] is not None:
                    p.add(host, obj, "preempt_delay", "not allowed with %s" % why)
                if inst["effective_state"] == "MASTER" and inst["effective_priority"] != 255:
                    p.add(host, obj, "state", "MASTER with %s needs priority 255 (the address owner); use BACKUP" % why)
                if not inst["all_vips"]:
                    p.add(host, obj, "virtual_ipaddresses", "%s needs at least one VIP" % why)
                version = inst["version"] or (3 if inst["family"] == "ipv6" else 2)
                if version == 2 and any(v["family"] == "ipv6" for v in inst["all_vips"]):
                    p.add(host, obj, "virtual_ipaddresses", "IPv6 addresses need VRRP version 3 with %s" % why)
                if version == 2 and inst["accept"]:
                    p.add(host, obj, "accept", "not allowed for VRRP version 2 with %s" % why)
                for key in ("garp_master_repeat", "garp_lower_prio_repeat", "garp_master_refresh_repeat"):
                    if (inst.get(key) or 0) > 1:
                        p.add(host, obj, key, "gratuitous ARP repeats are not allowed with %s" % why)
                if inst["accept"] is not True and inst["effective_priority"] != 255:
                    vip_set = {v["address"] for v in inst["all_vips"]}
                    for vs in cfg["virtual_servers"]:
                        if vs["service"]["address"] in vip_set:
                            p.add(host, obj, "accept", "%s implies no_accept, so this director would drop the traffic of "
                                  "%s on its VIP: set accept: true (VRRP version 3)" % (why, vs["object"]))
    # VRID unique per broadcast segment (and family).
    for (segment, family, vrid), users in sorted(vrids.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        owners: dict[tuple[str, str], list[str]] = {}
        for group, name, host in users:
            owners.setdefault((group, name), []).append(host)
        if len(owners) < 2:
            continue
        ordered = sorted(owners.items(), key=lambda kv: (min(kv[1]), kv[0]))
        (first_group, first_name), first_hosts = ordered[0]
        for (group, name), hosts in ordered[1:]:
            p.add(sorted(hosts)[0], "instance %s" % name, "virtual_router_id",
                  "%d is also used by instance %s (%s) on segment %s (%s): a VRID must be unique per broadcast segment"
                  % (vrid, first_name, ", ".join(sorted(first_hosts)), segment, family))


def _show(value: t.Any) -> str:
    return "(unset)" if value is None else str(value)


def _check_services(cfgs: t.Mapping[str, dict], p: _Problems) -> None:
    for host in sorted(cfgs):
        cfg = cfgs[host]
        if not cfg["in_play"]:
            continue
        table_owned = set(cfg["ipvs_table_services"])
        for vs in cfg["virtual_servers"]:
            if service_key(vs["service"]) in table_owned:
                p.add(host, vs["object"], "", "is also managed by lvs.ipvs.ipvs_table on this director "
                      "(keepalived_ipvs_table_services): the IPVS entries of a service have one owner, keepalived or ipvs_table")
        daemon = cfg["lvs_sync_daemon"]
        if daemon and daemon["instance"] is None and cfg["instances"]:
            p.add(host, "lvs_sync_daemon", "instance", "set the VRRP instance whose state the sync daemon follows "
                  "(master on the MASTER director, backup on the others)")


def kernel_needs(cfg: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """What the kernel of a director needs for its settings: modules and minimum releases."""
    needs: list[dict[str, t.Any]] = []
    if cfg["virtual_servers"] or cfg["lvs_sync_daemon"]:
        first = cfg["virtual_servers"][0]["object"] if cfg["virtual_servers"] else "lvs_sync_daemon"
        needs.append({"module": "ip_vs", "object": first, "field": "" if cfg["virtual_servers"] else "interface"})
    for vs in cfg["virtual_servers"]:
        svc = vs["service"]
        needs.append({"module": "ip_vs_%s" % svc["scheduler"], "object": vs["object"], "field": "scheduler"})
        if svc["persistence_engine"]:
            needs.append({"module": "ip_vs_pe_%s" % svc["persistence_engine"], "object": vs["object"],
                          "field": "persistence_engine"})
        servers = [(rs["model"], "real_servers[%d]" % i) for i, rs in enumerate(vs["real_servers"])]
        if vs["sorry_server"]:
            servers.append((vs["sorry_server"]["model"], "sorry_server"))
        for rs, field in servers:
            kind = rs.get("tunnel_type")
            if kind in TUNNEL_MIN_RELEASE:
                needs.append({"release": TUNNEL_MIN_RELEASE[kind], "object": vs["object"], "field": field + ".tunnel_type",
                              "what": "tunnel_type %s" % kind})
            if kind == "gue" and rs.get("tunnel_checksum") not in (None, "nocsum"):
                needs.append({"release": GUE_CHECKSUM_MIN_RELEASE, "object": vs["object"], "field": field + ".tunnel_checksum",
                              "what": "tunnel_checksum %s with gue" % rs["tunnel_checksum"]})
    seen, out = set(), []
    for need in needs:
        key = need.get("module") or need["field"] + need["object"]
        if key not in seen:
            seen.add(key)
            out.append(need)
    return out


def _check_kernel(cfgs: t.Mapping[str, dict], p: _Problems) -> None:
    for host in sorted(cfgs):
        cfg = cfgs[host]
        kernel = cfg["kernel"]
        if not cfg["in_play"] or not kernel:
            continue
        missing = set(kernel.get("missing") or [])
        release = _release(kernel.get("release"))
        for need in kernel_needs(cfg):
            if "module" in need and need["module"] in missing:
                p.add(host, need["object"], need["field"], "needs kernel module %s, which this director does not have "
                      "(modprobe -n %s failed)" % (need["module"], need["module"]))
            elif "release" in need and release and release < need["release"]:
                p.add(host, need["object"], need["field"], "%s needs Linux %d.%d or later; this director runs %s"
                      % (need["what"], need["release"][0], need["release"][1], kernel.get("release")))


def normalize(records: t.Mapping[str, t.Mapping[str, t.Any]]) -> tuple[dict[str, dict], _Problems]:
    """Canonical settings of every director (derived values filled) and the problems found so far."""
    p = _Problems()
    cfgs = {}
    for host in records:
        record = records[host]
        if not isinstance(record, t.Mapping):
            p.add(str(host), "", "", "no keepalived settings found for this director")
            continue
        cfgs[str(host)] = _normalize_host(str(host), record, p)
    _derive(cfgs)
    return cfgs, p


def check(records: t.Mapping[str, t.Mapping[str, t.Any]]) -> list[str]:
    """Every problem of the directors' settings, across the inventory; [] when all is well.

    Records of hosts outside the play (``in_play: false``) are used for the cross-checks
    (peers, priorities, VRIDs) but their own problems are not reported.
    """
    cfgs, p = normalize(records)
    _check_instances(cfgs, p)
    _check_services(cfgs, p)
    _check_kernel(cfgs, p)
    return p.of({str(h) for h in records} - {h for h, c in cfgs.items() if not c["in_play"]})


def resolve(records: t.Mapping[str, t.Mapping[str, t.Any]], host: str) -> dict[str, t.Any]:
    """What the template renders for ``host`` (raises PreflightError if its settings have problems)."""
    cfgs, found = normalize(records)
    if host not in cfgs:
        raise PreflightError(["host %s: no keepalived settings found for this director" % host])
    own = found.of({host})
    if own:
        raise PreflightError(own)
    cfg = cfgs[host]
    secrets = {}
    instances = []
    for inst in cfg["instances"]:
        item = {k: v for k, v in inst.items() if k not in ("auth_pass", "all_vips")}
        item["auth_variable"] = None
        if inst["auth_pass"] is not None:
            item["auth_variable"] = secret_variable(inst["index"], inst["name"])
            secrets[item["auth_variable"]] = inst["auth_pass"]
        item["state"] = inst["effective_state"]
        item["priority"] = inst["effective_priority"]
        item["unicast_src_ip"] = inst["effective_src_ip"] if inst["effective_peers"] else inst["unicast_src_ip"]
        item["unicast_peers"] = inst["effective_peers"]
        instances.append(item)
    services = []
    for vs in cfg["virtual_servers"]:
        services.append({"protocol": vs["service"]["protocol"], "address": vs["service"]["address"],
                         "port": vs["service"]["port"], "fwmark": vs["service"]["fwmark"], "family": vs["service"]["family"]})
    return {
        "host": host,
        "router_id": cfg["router_id"],
        "vrrp_strict": cfg["vrrp_strict"],
        "global_defs": cfg["global_defs"],
        "lvs_sync_daemon": cfg["lvs_sync_daemon"],
        "vrrp_scripts": cfg["vrrp_scripts"],
        "sync_groups": cfg["sync_groups"],
        "instances": instances,
        "virtual_servers": cfg["virtual_servers"],
        "ipvs_services": services,
        "kernel_modules": sorted({n["module"] for n in kernel_needs(cfg) if "module" in n}),
        "secrets": secrets,
    }


def draining(cfg: t.Mapping[str, t.Any], live: t.Any) -> dict[str, t.Any]:
    """Real servers that leave keepalived's pool, and the virtual servers that drain them.

    ``cfg`` is what :func:`resolve` returned for this director, ``live`` the ``services`` of
    lvs.ipvs.ipvs_info (with stats). A real server *leaves* when the kernel has it under one of
    ``cfg``'s virtual servers and ``cfg`` no longer lists it. Rendered with the returned
    ``virtual_servers`` (each leaving TCP/SCTP real server kept at weight 0, no checks),
    keepalived stops sending it new connections and keeps its live ones; the configuration
    without it then removes it. UDP real servers are removed at once, as lvs.ipvs.ipvs_table
    does. ``busy`` names those still at a weight above 0 or with connections.
    """
    by_key: dict[tuple, t.Mapping[str, t.Any]] = {}
    for svc in live if isinstance(live, list) else []:
        try:
            by_key[service_key(svc)] = svc
        except (KeyError, TypeError):
            continue
    leaving: list[dict[str, t.Any]] = []
    virtual_servers = []
    for vs in cfg.get("virtual_servers") or []:
        svc = vs["service"]
        have = by_key.get(service_key(svc)) or {}
        wanted = {real_server_key(rs["model"]) for rs in vs["real_servers"]}
        udp = svc["protocol"] == "udp"
        kept = []
        for rs in have.get("real_servers") or []:
            if real_server_key(rs) in wanted:
                continue
            conns = int(rs.get("active_connections") or 0) + int(rs.get("inactive_connections") or 0)
            leaving.append({"service": vs["label"], "real_server": real_server_label(rs), "weight": rs.get("weight"),
                            "connections": conns, "drained": not udp,
                            "busy": not udp and (rs.get("weight") != 0 or conns > 0)})
            if not udp:
                kept.append({"model": rs, "head": _rs_head(rs, svc), "weight": 0, "lvs_method": _lvs_method(rs),
                             "uthreshold": 0, "lthreshold": 0, "options": [], "notify_up": None,
                             "notify_down": None, "inhibit_on_failure": None, "checks": []})
        virtual_servers.append(dict(vs, real_servers=list(vs["real_servers"]) + kept) if kept else vs)
    return {"leaving": leaving, "busy": ["%s %s" % (x["service"], x["real_server"]) for x in leaving if x["busy"]],
            "drain": any(x["drained"] for x in leaving), "virtual_servers": virtual_servers}
