# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ipvsadm text codec: ``ipvsadm-save -n`` text <-> canonical table; ops -> ipvsadm lines.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Pure: no I/O. ``render_save`` reproduces ``ipvsadm-save -n`` byte for byte (it drops real-server
thresholds and prints fwmarks above 2^31 as negative numbers, as ipvsadm does);
``render_restore`` keeps thresholds (``-x``/``-y``) and prints marks unsigned, so its output
restores the whole table with ``ipvsadm-restore``.
"""

from __future__ import annotations

import re
import shlex
import socket
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    DEFAULT_PERSISTENCE_TIMEOUT,
    IPVSValidationError,
    default_netmask,
    show,
    normalize_table,
    sort_table,
)
from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_plan as plan_ops

_PROTO_OPTS = {"tcp": "-t", "udp": "-u", "sctp": "--sctp-service"}
_FWD_OPTS = {"nat": "-m", "dr": "-g", "tunnel": "-i"}

_SERVICE_OPTS = {"-t": "tcp", "--tcp-service": "tcp", "-u": "udp", "--udp-service": "udp", "--sctp-service": "sctp"}
_FWD_BY_OPT = {"-m": "nat", "--masquerading": "nat", "-g": "dr", "--gatewaying": "dr", "-i": "tunnel", "--ipip": "tunnel"}
_VALUE_OPTS = {
    "-s": "scheduler", "--scheduler": "scheduler",
    "-M": "persistence_netmask", "--netmask": "persistence_netmask",
    "--pe": "persistence_engine",
    "-b": "scheduler_flags", "--sched-flags": "scheduler_flags",
    "-w": "weight", "--weight": "weight",
    "-x": "upper_threshold", "--u-threshold": "upper_threshold",
    "-y": "lower_threshold", "--l-threshold": "lower_threshold",
    "--tun-type": "tunnel_type",
    "--tun-port": "tunnel_port",
}
_CSUM_OPTS = {"--tun-nocsum": "nocsum", "--tun-csum": "csum", "--tun-remcsum": "remcsum"}
_COMMANDS = {"-A": "add-service", "--add-service": "add-service", "-a": "add-server", "--add-server": "add-server",
             "-E": "edit-service", "--edit-service": "edit-service", "-e": "edit-server", "--edit-server": "edit-server"}
# ipvsadm refuses an option given twice on one line ("multiple ... options specified");
# options of one group (the service selector, the forwarding method) count as the same option.
_GROUPS = dict({opt: "service" for opt in list(_SERVICE_OPTS) + ["-f", "--fwmark-service"]},
               **{opt: "forwarding" for opt in _FWD_BY_OPT}, **{opt: "tunnel checksum" for opt in _CSUM_OPTS},
               **{"-r": "real server", "--real-server": "real server", "-p": "persistent", "--persistent": "persistent",
                  "-o": "ops", "--ops": "ops", "-6": "ipv6", "--ipv6": "ipv6"},
               **_VALUE_OPTS)
# Longest line and text taken: refused before any parsing (a restore line is < 300 characters).
MAX_LINE = 4096
MAX_TEXT = 64 * 1024 * 1024
_NUM_RE = re.compile(r"[0-9]{1,10}\Z")
# Printable ASCII, spaces and tabs, no quote or backslash: shlex would split it on whitespace only.
_PLAIN_RE = re.compile(r"[ \t!#-&(-\[\]-~]*\Z")


def _hostport(address: str, port: int) -> str:
    return "%s:%d" % ("[%s]" % address if ":" in address else address, port)


def service_args(svc: t.Mapping[str, t.Any], signed_fwmark: bool = False) -> str:
    """The service selector: ``-t 10.0.0.1:80`` or ``-f 1 -6``.

    ``signed_fwmark`` prints the mark as ipvsadm-save does (``%d``: above 2^31 it turns negative).
    """
    if svc.get("fwmark") is not None:
        mark = svc["fwmark"]
        if signed_fwmark and mark >= 2 ** 31:
            mark -= 2 ** 32
        return "-f %d%s" % (mark, " -6" if svc["family"] == "ipv6" else "")
    return "%s %s" % (_PROTO_OPTS[svc["protocol"]], _hostport(svc["address"], svc["port"]))


def service_line(svc: t.Mapping[str, t.Any], command: str = "-A", signed_fwmark: bool = False) -> str:
    """One service as ipvsadm prints it in ``-Sn`` (option order included)."""
    parts = [command, service_args(svc, signed_fwmark), "-s", svc["scheduler"]]
    if svc["persistence_timeout"]:
        parts += ["-p", str(svc["persistence_timeout"])]
        if svc["persistence_netmask"] != default_netmask(svc["family"]):
            parts += ["-M", str(svc["persistence_netmask"])]
    if svc.get("persistence_engine"):
        parts += ["--pe", svc["persistence_engine"]]
    if svc.get("one_packet"):
        parts.append("-o")
    if svc.get("scheduler_flags"):
        parts += ["-b", ",".join(svc["scheduler_flags"])]
    return " ".join(parts)


def real_server_line(svc: t.Mapping[str, t.Any], rs: t.Mapping[str, t.Any], command: str = "-a",
                     thresholds: bool = True, signed_fwmark: bool = False) -> str:
    """One real server as ``-Sn`` prints it; ``thresholds`` adds ``-x``/``-y`` when set."""
    parts = [command, service_args(svc, signed_fwmark), "-r", _hostport(rs["address"], rs["port"]), _FWD_OPTS[rs["forwarding"]],
             "-w", str(rs["weight"])]
    if rs["forwarding"] == "tunnel" and rs.get("tunnel_type"):
        parts += ["--tun-type", rs["tunnel_type"]]
        if rs["tunnel_type"] == "gue":
            parts += ["--tun-port", str(rs["tunnel_port"])]
        if rs["tunnel_type"] != "ipip":
            parts.append("--tun-%s" % (rs.get("tunnel_checksum") or "nocsum"))
    if thresholds:
        if rs.get("upper_threshold"):
            parts += ["-x", str(rs["upper_threshold"])]
        if rs.get("lower_threshold"):
            parts += ["-y", str(rs["lower_threshold"])]
    return " ".join(parts)


def _render(table: t.Iterable[t.Mapping[str, t.Any]], restorable: bool) -> str:
    lines = []
    for svc in sort_table(table):
        lines.append(service_line(svc, signed_fwmark=not restorable))
        for rs in svc.get("real_servers") or []:
            lines.append(real_server_line(svc, rs, thresholds=restorable, signed_fwmark=not restorable))
    return "".join(line + "\n" for line in lines)


def render_save(table: t.Iterable[t.Mapping[str, t.Any]]) -> str:
    """The table exactly as ``ipvsadm-save -n`` prints it: no thresholds, fwmarks over 2^31 negative."""
    return _render(table, restorable=False)


def render_restore(table: t.Iterable[t.Mapping[str, t.Any]]) -> str:
    """Text that ``ipvsadm-restore`` takes back without loss: thresholds kept, fwmarks unsigned."""
    return _render(table, restorable=True)


def op_line(op: t.Mapping[str, t.Any]) -> str:
    """One planned op as the ipvsadm arguments that would do the same."""
    action, svc = op["action"], op["service"]
    if action == plan_ops.ADD_SERVICE:
        return service_line(svc, "-A")
    if action == plan_ops.SET_SERVICE:
        return service_line(svc, "-E")
    if action == plan_ops.DEL_SERVICE:
        return "-D " + service_args(svc)
    rs = op["real_server"]
    if action == plan_ops.ADD_REAL_SERVER:
        return real_server_line(svc, rs, "-a")
    if action == plan_ops.SET_REAL_SERVER:
        return real_server_line(svc, rs, "-e")
    if action == plan_ops.DEL_REAL_SERVER:
        return "-d %s -r %s" % (service_args(svc), _hostport(rs["address"], rs["port"]))
    raise ValueError("unknown action %r" % (action,))


def commands(ops: t.Iterable[t.Mapping[str, t.Any]]) -> list[str]:
    """Ops as complete ipvsadm command lines (the ``commands`` return value)."""
    return ["ipvsadm " + op_line(op) for op in ops]


def _split_hostport(text: str, field: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise IPVSValidationError(field, "%s: unbalanced brackets" % show(text))
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise IPVSValidationError(field, "%s: expected :port after the address" % show(text))
        port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        return text, None
    if not _NUM_RE.match(port):
        raise IPVSValidationError(field, "%s: port %s is not a number" % (show(text), show(port)))
    return host, int(port)


def parse_line(line: str, field: str = "line") -> tuple[str, dict, dict | None]:
    """Parse one ``-A``/``-a`` (or ``-E``/``-e``) line into (kind, service, real_server).

    Refuses what ipvsadm refuses on one line: an option given twice (``-t`` and ``-u``, two ``-r``).
    """
    if len(line) > MAX_LINE:
        raise IPVSValidationError(field, "line is %d characters long (at most %d)" % (len(line), MAX_LINE))
    if _PLAIN_RE.match(line):
        tokens = line.split()  # what shlex.split gives for a line without quotes or escapes, 10x faster
    else:
        try:
            tokens = shlex.split(line)
        except ValueError as exc:
            raise IPVSValidationError(field, str(exc)) from None
    if tokens and tokens[0] == "ipvsadm":
        tokens = tokens[1:]
    if not tokens or tokens[0] not in _COMMANDS:
        raise IPVSValidationError(field, "%s is not an ipvsadm add/edit command" % show(line))
    kind = _COMMANDS[tokens[0]]
    svc: dict[str, t.Any] = {}
    rs: dict[str, t.Any] = {}
    seen: dict[str, str] = {}
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        group = _GROUPS.get(tok)
        if group is not None:
            if group in seen:
                raise IPVSValidationError(field, "%s after %s: ipvsadm refuses more than one %s option on a line"
                                          % (tok, seen[group], group))
            seen[group] = tok
        if tok in _SERVICE_OPTS or tok in ("-f", "--fwmark-service", "-r", "--real-server") or tok in _VALUE_OPTS:
            if nxt is None:
                raise IPVSValidationError(field, "%s needs a value" % tok)
            i += 2
        else:
            i += 1
        if tok in _SERVICE_OPTS:
            svc["protocol"] = _SERVICE_OPTS[tok]
            svc["address"], svc["port"] = _split_hostport(nxt, field)
        elif tok in ("-f", "--fwmark-service"):
            # ipvsadm-save prints marks above 2^31 as negative numbers; read them back unsigned.
            if nxt.startswith("-") and _NUM_RE.match(nxt[1:]) and int(nxt[1:]) <= 2 ** 31:
                svc["fwmark"] = 2 ** 32 - int(nxt[1:])
            else:
                svc["fwmark"] = nxt
        elif tok in ("-6", "--ipv6"):
            svc["family"] = "ipv6"
        elif tok in ("-p", "--persistent"):
            if nxt is not None and _NUM_RE.match(nxt):
                svc["persistence_timeout"] = int(nxt)
                i += 1
            else:
                svc["persistence_timeout"] = DEFAULT_PERSISTENCE_TIMEOUT
        elif tok in ("-o", "--ops"):
            svc["one_packet"] = True
        elif tok in ("-r", "--real-server"):
            rs["address"], rs["port"] = _split_hostport(nxt, field)
        elif tok in _FWD_BY_OPT:
            rs["forwarding"] = _FWD_BY_OPT[tok]
        elif tok in _CSUM_OPTS:
            rs["tunnel_checksum"] = _CSUM_OPTS[tok]
        elif tok in _VALUE_OPTS:
            name = _VALUE_OPTS[tok]
            target = svc if name in ("scheduler", "persistence_netmask", "persistence_engine", "scheduler_flags") else rs
            target[name] = nxt
        else:
            raise IPVSValidationError(field, "unknown ipvsadm option %s" % show(tok))
    netmask = svc.get("persistence_netmask")
    if netmask and _NUM_RE.match(netmask) and svc.get("family") != "ipv6" and ":" not in (svc.get("address") or ""):
        # ipvsadm reads an IPv4 -M with inet_aton: "24" is the mask 0.0.0.24, not a /24.
        try:
            svc["persistence_netmask"] = socket.inet_ntoa(socket.inet_aton(netmask))
        except (OSError, ValueError):
            raise IPVSValidationError(field, "-M %s is not a netmask" % show(netmask)) from None
    if "address" not in svc and "fwmark" not in svc:
        raise IPVSValidationError(field, "no service given (-t, -u, --sctp-service or -f)")
    server = kind in ("add-server", "edit-server")
    if not server and rs:
        raise IPVSValidationError(field, "real-server options on a service line")
    if server and "address" not in rs:
        raise IPVSValidationError(field, "a real-server line needs -r")
    return kind, svc, (rs if server else None)


def _canon(address: t.Any) -> t.Any:
    """Address text as a key: canonical when it parses, else as given (validation names it later)."""
    if not isinstance(address, str):
        return address
    text = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, text))
        except (OSError, ValueError):
            continue
    return address


def parse_save(text: str, field: str = "running_config") -> list[dict[str, t.Any]]:
    """Parse ``ipvsadm-save -n`` (or ``ipvsadm-restore`` input) into a canonical table."""
    if not isinstance(text, str):
        raise IPVSValidationError(field, "must be text")
    if len(text) > MAX_TEXT:
        raise IPVSValidationError(field, "is %d characters long (at most %d)" % (len(text), MAX_TEXT))
    raw: dict[tuple, dict[str, t.Any]] = {}
    servers: dict[tuple, dict[tuple, dict[str, t.Any]]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = "%s line %d" % (field, lineno)
        kind, svc, rs = parse_line(line, where)
        key = (svc.get("protocol"), _canon(svc.get("address")), svc.get("port"), svc.get("fwmark"), svc.get("family"))
        if kind == "add-service":
            if key in raw:
                raise IPVSValidationError(where, "service added twice (ipvsadm -R refuses it: service already exists)")
            raw[key] = svc
            servers[key] = {}
            continue
        if key not in raw:
            raise IPVSValidationError(where, "%s for a service not defined above it" % ("edit" if kind == "edit-service" else "real server"))
        if kind == "edit-service":
            raw[key] = svc
            continue
        rs_key = (_canon(rs["address"]), rs.get("port"))
        if kind == "add-server" and rs_key in servers[key]:
            raise IPVSValidationError(where, "real server added twice (ipvsadm -R refuses it: destination already exists)")
        if kind == "edit-server" and rs_key not in servers[key]:
            raise IPVSValidationError(where, "edit of a real server not added above it")
        servers[key][rs_key] = rs
    for key, svc in raw.items():
        svc["real_servers"] = list(servers[key].values())
    return normalize_table(list(raw.values()), field, strict=False)
