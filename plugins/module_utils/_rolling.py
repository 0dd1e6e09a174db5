# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling maintenance of real servers: which entries to drain, the floor of healthy ones, and the
records of the weights to restore (kept on the directors, outside the live table).

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Pure module: no I/O. Input is the IPVS table of each director as lvs.ipvs.ipvs_info returns
it (``services``, each with ``real_servers`` and, with ``stats``, connection counts).
"""

from __future__ import annotations

import ipaddress
import json
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


# -- the record of the weights to restore (outside the live table) -----------------------------

RECORD_FORMAT = 1


def _key(director: t.Any, service: t.Mapping[str, t.Any], real_server: t.Mapping[str, t.Any]) -> tuple[str, str, str, t.Any]:
    return (str(director), label(service), _address(real_server["address"]), real_server["port"])


def _entry_label(e: t.Mapping[str, t.Any]) -> str:
    rs = e["real_server"]
    host = "[%s]" % rs["address"] if ":" in str(rs["address"]) else rs["address"]
    service = e.get("service_label") or label(e["service"])
    return "director %s, service %s, real server %s:%s" % (e["director"], service, host, rs["port"])


def record_name(address: t.Any) -> str:
    """File name of a real server's record: its address in normal form (``:`` as ``_``), ``.json``."""
    return _address(address).replace(":", "_") + ".json"


def records(entries: t.Sequence[t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The records to write on the directors before the drain: one per director and real server.

    Each is ``{director, address, name, record}``; ``record`` names the real server and, per
    service, the real server's fields with the weight to restore.
    """
    groups: dict[tuple[str, str], list[dict[str, t.Any]]] = {}
    for e in entries:
        address = _address(e["real_server"]["address"])
        groups.setdefault((str(e["director"]), address), []).append(
            {"service": dict(e["service"]), "service_label": e.get("service_label") or label(e["service"]),
             "real_server": {k: e["real_server"].get(k) for k in RS_KEYS}})
    return [{"director": director, "address": address, "name": record_name(address),
             "record": {"format": RECORD_FORMAT, "director": director, "real_server": address, "entries": items}}
            for (director, address), items in sorted(groups.items())]


class RecordError(ValueError):
    """A record that cannot be trusted; the message names it."""


def parse_record(text: str) -> dict[str, t.Any]:
    """A record's JSON text, checked: raises RecordError saying what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError("not valid JSON (%s)" % exc) from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise RecordError("not a record of format %d" % RECORD_FORMAT)
    if not isinstance(data.get("real_server"), str) or not isinstance(data.get("entries"), list):
        raise RecordError("no real_server or entries")
    for index, item in enumerate(data["entries"]):
        rs = item.get("real_server") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(item.get("service"), dict) or not isinstance(rs, dict):
            raise RecordError("entries[%d]: no service or real_server" % index)
        weight = rs.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0 or "address" not in rs or "port" not in rs:
            raise RecordError("entries[%d]: no address, port or weight (a whole number >= 0)" % index)
        try:
            label(item["service"])
        except (KeyError, TypeError):
            raise RecordError("entries[%d]: the service has no fwmark nor address and port" % index) from None
        if _address(rs["address"]) != _address(data["real_server"]):
            raise RecordError("entries[%d]: real server %s, the record is of %s" % (index, rs["address"], data["real_server"]))
    return data


def merge_records(plan_: t.Mapping[str, t.Any], found: t.Mapping[str, t.Sequence[tuple[str, str]]],
                  batch: t.Iterable[t.Any], record_dir: str = "") -> dict[str, t.Any]:
    """The plan with the weights of the records left by an interrupted run; the records to write.

    ``found``: director -> [(path, text)] of the record files found on it. A record of a real
    server of the batch gives the weight to restore for its entries (the table holds the drained
    weight, 0, after a run died between its drain and its restore). Records of other real servers
    are reported (``foreign``), not used. A record that cannot be read is a problem: the run stops
    before the drain. Adds ``recovered`` (messages), ``foreign``, ``stale`` (recorded entries no
    longer in the table), ``records`` (to write), ``record_names`` (of the batch, to remove after the
    verification) and ``summary`` (the weights to restore, one line per entry).
    """
    wanted = {record_name(a) for a in batch}
    problems = list(plan_.get("problems") or [])
    recorded: dict[tuple[str, str, str, t.Any], tuple[int, str]] = {}
    stale_candidates: list[tuple[tuple[str, str, str, t.Any], str]] = []
    foreign: list[str] = []
    for director in sorted(found):
        for path, text in sorted(found[director]):
            name = path.rsplit("/", 1)[-1]
            if name not in wanted:
                foreign.append("director %s: %s, left by an interrupted run, is of a real server outside this batch; "
                               "its weights are restored only by a run whose batch has that real server" % (director, path))
                continue
            try:
                data = parse_record(text)
                if record_name(data["real_server"]) != name:
                    raise RecordError("it is the record of %s" % data["real_server"])
            except RecordError as exc:
                problems.append("director %s, record %s: %s; it may hold the weights an interrupted run did not restore: "
                                "fix it or remove it" % (director, path, exc))
                continue
            for item in data["entries"]:
                key = _key(director, item["service"], item["real_server"])
                recorded[key] = (int(item["real_server"]["weight"]), path)
                stale_candidates.append((key, "%s, weight %s (%s)" % (
                    _entry_label({"director": director, "service": item["service"],
                                  "service_label": item.get("service_label"), "real_server": item["real_server"]}),
                    item["real_server"]["weight"], path)))
    entries = []
    recovered = []
    summary = []
    planned = set()
    for e in plan_.get("entries") or []:
        e = dict(e, real_server=dict(e["real_server"]))
        key = _key(e["director"], e["service"], e["real_server"])
        planned.add(key)
        table_weight = int(e["real_server"].get("weight") or 0)
        if key in recorded:
            weight, path = recorded[key]
            e["real_server"]["weight"] = weight
            e["weight_source"] = path
            recovered.append("%s: weight %d from the record %s of an interrupted run, not %d from the table"
                             % (_entry_label(e), weight, path, table_weight))
            summary.append("%s: restore weight %d (record of an interrupted run: %s; the table has %d)"
                           % (_entry_label(e), weight, path, table_weight))
        else:
            e["weight_source"] = "table"
            summary.append("%s: restore weight %d (read from the table)" % (_entry_label(e), table_weight))
        entries.append(e)
    stale = ["%s: recorded but no longer in the table, not restored" % text
             for key, text in stale_candidates if key not in planned]
    return dict(plan_, entries=entries, problems=problems, recovered=recovered, foreign=foreign, stale=stale,
                records=records(entries), record_names=sorted(wanted), record_dir=record_dir,
                summary=summary)


def rescue_report(entries: t.Sequence[t.Mapping[str, t.Any]], unreadable: t.Mapping[str, str],
                  outcomes: t.Sequence[tuple[t.Mapping[str, t.Any], bool, str]]) -> dict[str, t.Any]:
    """What the rescue did: ``restored``, ``absent`` (a health checker removed the entry), ``failed``
    (messages), ``clean`` (directors where nothing failed: their records can go) and ``message``.

    ``unreadable``: director -> why its table could not be read (nothing restored there);
    ``outcomes``: (entry, ok, message) of every restore attempted.
    """
    tried = {_key(e["director"], e["service"], e["real_server"]): (ok, msg) for e, ok, msg in outcomes}
    restored_, absent, failed = [], [], []
    bad = set()
    for e in entries:
        key = _key(e["director"], e["service"], e["real_server"])
        text = "%s weight %s" % (_entry_label(e), e["real_server"]["weight"])
        if str(e["director"]) in unreadable:
            failed.append("%s: not restored, the table could not be read (%s)" % (text, unreadable[str(e["director"])]))
            bad.add(str(e["director"]))
        elif key not in tried:
            absent.append(_entry_label(e))
        elif tried[key][0]:
            restored_.append(text)
        else:
            failed.append("%s: the restore failed (%s)" % (text, tried[key][1]))
            bad.add(str(e["director"]))
    directors = sorted({str(e["director"]) for e in entries} | set(unreadable))
    parts = []
    if restored_:
        parts.append("The weights were restored: " + "; ".join(restored_))
    if absent:
        parts.append("Not in the table any more (a health checker removed it; it adds it back): " + "; ".join(absent))
    if failed:
        parts.append("RESTORE FAILED: " + "; ".join(failed) + "; the records of the weights are kept on director%s %s "
                     "for the next run" % ("" if len(bad) == 1 else "s", ", ".join(sorted(bad))))
    if not entries:
        parts.append("Nothing was drained")
    return {"restored": restored_, "absent": absent, "failed": failed,
            "clean": [d for d in directors if d not in bad], "message": ". ".join(parts)}
