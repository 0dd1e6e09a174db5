# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling maintenance of real servers: which entries to drain, and the floor of healthy ones.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Pure module: no I/O. Input is the IPVS table of each director as lvs.ipvs.ipvs_info returns
it (``services``, each with ``real_servers`` and, with ``stats``, connection counts).
"""

from __future__ import annotations

import ipaddress
import typing as t


RS_KEYS = ("address", "port", "forwarding", "weight", "upper_threshold", "lower_threshold", "tunnel_type",
           "tunnel_port", "tunnel_checksum")


def _address(text: t.Any) -> str:
    raw = str(text).strip().strip("[]")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return raw


def service_identity(svc: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The ``service`` option of lvs.ipvs.ipvs_real_server for a service of an ipvs_info table."""
    if svc.get("fwmark"):
        return {"fwmark": svc["fwmark"], "family": svc.get("family") or "ipv4"}
    return {"protocol": svc.get("protocol") or "tcp", "address": svc["address"], "port": svc["port"]}


def label(svc: t.Mapping[str, t.Any]) -> str:
    if svc.get("fwmark"):
        return "fwmark %s" % svc["fwmark"]
    host = "[%s]" % svc["address"] if ":" in str(svc["address"]) else svc["address"]
    return "%s %s:%s" % (svc.get("protocol") or "tcp", host, svc["port"])


def plan(tables: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]], batch: t.Iterable[t.Any], floor: int) -> dict[str, t.Any]:
    """Entries of the batch's real servers on every director, and floor problems.

    ``tables``: director -> ipvs_info ``services``; ``batch``: the addresses being maintained.
    A real server is healthy when it is in the table with a weight above 0. Draining the batch
    must leave at least ``floor`` healthy real servers in every service it is part of.
    """
    wanted = {_address(a) for a in batch}
    entries: list[dict[str, t.Any]] = []
    problems: list[str] = []
    found: set[str] = set()
    for director in sorted(tables):
        for svc in tables[director] or []:
            servers = svc.get("real_servers") or []
            mine = [rs for rs in servers if _address(rs["address"]) in wanted]
            if not mine:
                continue
            healthy_left = sorted(rs["address"] for rs in servers
                                  if _address(rs["address"]) not in wanted and int(rs.get("weight") or 0) > 0)
            if len(healthy_left) < floor:
                problems.append(
                    "director %s, service %s: taking out %s leaves %d healthy real server%s (%s), below the floor of %d"
                    % (director, label(svc), ", ".join(sorted(rs["address"] for rs in mine)), len(healthy_left),
                       "" if len(healthy_left) == 1 else "s", ", ".join(healthy_left) or "none", floor))
            for rs in mine:
                found.add(_address(rs["address"]))
                entries.append({
                    "director": director,
                    "service": service_identity(svc),
                    "service_label": label(svc),
                    "real_server": {k: rs.get(k) for k in RS_KEYS},
                    "active_connections": int(rs.get("active_connections") or 0),
                    "inactive_connections": int(rs.get("inactive_connections") or 0),
                })
    return {"entries": entries, "problems": problems, "missing": sorted(wanted - found)}


def connections(tables: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]], entries: t.Sequence[t.Mapping[str, t.Any]],
                inactive: bool = False) -> int:
    """Connections still on the drained entries (active, plus inactive when asked)."""
    keys = {(e["director"], label(e["service"]), _address(e["real_server"]["address"]), e["real_server"]["port"])
            for e in entries}
    total = 0
    for director, services in tables.items():
        for svc in services or []:
            for rs in svc.get("real_servers") or []:
                if (director, label(service_identity(svc)), _address(rs["address"]), rs["port"]) in keys:
                    total += int(rs.get("active_connections") or 0)
                    if inactive:
                        total += int(rs.get("inactive_connections") or 0)
    return total


def present(tables: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]], entries: t.Sequence[t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The entries whose real server is still in its director's table (a health check may have removed it)."""
    have = set()
    for director, services in tables.items():
        for svc in services or []:
            for rs in svc.get("real_servers") or []:
                have.add((director, label(service_identity(svc)), _address(rs["address"]), rs["port"]))
    return [e for e in entries
            if (e["director"], label(e["service"]), _address(e["real_server"]["address"]), e["real_server"]["port"]) in have]


def restored(tables: t.Mapping[str, t.Sequence[t.Mapping[str, t.Any]]], entries: t.Sequence[t.Mapping[str, t.Any]]) -> list[str]:
    """Entries not back in their table with their original weight ([] when all are)."""
    weights = {}
    for director, services in tables.items():
        for svc in services or []:
            for rs in svc.get("real_servers") or []:
                weights[(director, label(service_identity(svc)), _address(rs["address"]), rs["port"])] = int(rs.get("weight") or 0)
    out = []
    for e in entries:
        key = (e["director"], label(e["service"]), _address(e["real_server"]["address"]), e["real_server"]["port"])
        want = int(e["real_server"]["weight"] or 0)
        if weights.get(key) != want:
            out.append("director %s, service %s, real server %s:%s: weight %s, expected %d"
                       % (e["director"], e["service_label"], e["real_server"]["address"], e["real_server"]["port"],
                          "missing" if key not in weights else weights[key], want))
    return out
