# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner: (want, have, state) -> ordered operations on the IPVS table.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Pure: no I/O. ``want`` and ``have`` are canonical tables from ``_ipvs_model``. An op is a
dict ``{"action": ..., "service": <service config>, "real_server": <real server>?,
"before": <previous config>?}``. Edits are ``set`` ops, never delete + add. Order is
make-before-break: new services, edits, new real servers, then removals.
"""

from __future__ import annotations

import copy
import ipaddress
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    IPVSValidationError,
    real_server_config,
    real_server_key,
    service_config,
    service_key,
    service_label,
    sort_table,
)

ADD_SERVICE = "add_service"
SET_SERVICE = "set_service"
DEL_SERVICE = "del_service"
ADD_REAL_SERVER = "add_real_server"
SET_REAL_SERVER = "set_real_server"
DEL_REAL_SERVER = "del_real_server"

# Make-before-break: everything that adds or edits comes before anything that removes.
_ORDER = {ADD_SERVICE: 0, SET_SERVICE: 1, ADD_REAL_SERVER: 2, SET_REAL_SERVER: 3, DEL_REAL_SERVER: 4, DEL_SERVICE: 5}

STATES = ("merged", "replaced", "overridden", "deleted")


class PlanError(ValueError):
    """The request cannot be planned; ``key`` names the object concerned."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__("%s: %s" % (key, message))
        self.key = key


def _real_server_ops(svc_cfg: dict, want_rs: list | None, have_rs: list, exact: bool) -> list[dict]:
    ops: list[dict] = []
    if want_rs is None:
        return ops
    have_by_key = {real_server_key(r): r for r in have_rs}
    want_keys = set()
    for rs in want_rs:
        key = real_server_key(rs)
        want_keys.add(key)
        old = have_by_key.get(key)
        cfg = real_server_config(rs)
        if old is None:
            ops.append({"action": ADD_REAL_SERVER, "service": svc_cfg, "real_server": cfg})
        elif real_server_config(old) != cfg:
            ops.append({"action": SET_REAL_SERVER, "service": svc_cfg, "real_server": cfg, "before": real_server_config(old)})
    if exact:
        for rs in have_rs:
            if real_server_key(rs) not in want_keys:
                ops.append({"action": DEL_REAL_SERVER, "service": svc_cfg, "real_server": real_server_config(rs)})
    return ops


def plan(want: t.Sequence[dict], have: t.Sequence[dict], state: str = "merged",
         owns: t.Callable[[dict], bool] | None = None) -> list[dict]:
    """Ops that take ``have`` to the table ``state`` asks for.

    merged: add or edit the wanted services and listed real servers; touch nothing else.
    replaced: each wanted service becomes exactly as given, its real servers included.
    overridden: the owned part of the table equals ``want``.
    deleted: remove the wanted services (by key); with no ``want``, every owned service.
    ``owns(service)`` limits what replaced/overridden/deleted may remove (default: all).
    """
    if state not in STATES:
        raise PlanError("state", "unknown state %r" % (state,))
    owns = owns or (lambda svc: True)
    have_by_key = {service_key(s): s for s in have}
    ops: list[dict] = []
    if state == "deleted":
        # No list: every owned service, and only those (another owner's stay). A listed service
        # that is not owned is an error: the task asked for what it may not do.
        targets = [s for s in have if owns(s)] if not want else [
            have_by_key[service_key(w)] for w in want if service_key(w) in have_by_key]
        for svc in targets:
            if not owns(svc):
                raise PlanError(service_label(svc), "is outside what this task owns; refusing to delete it")
            ops.append({"action": DEL_SERVICE, "service": service_config(svc)})
        return ops
    exact = state in ("replaced", "overridden")
    want_keys = set()
    for svc in want:
        key = service_key(svc)
        if key in want_keys:
            raise PlanError(service_label(svc), "is listed twice")
        want_keys.add(key)
        if exact and not owns(svc):
            raise PlanError(service_label(svc), "is outside what this task owns")
        cfg = service_config(svc)
        old = have_by_key.get(key)
        want_rs = svc.get("real_servers")
        if exact and want_rs is None:
            want_rs = []
        if old is None:
            ops.append({"action": ADD_SERVICE, "service": cfg})
            ops.extend(_real_server_ops(cfg, want_rs, [], exact))
            continue
        if service_config(old) != cfg:
            ops.append({"action": SET_SERVICE, "service": cfg, "before": service_config(old)})
        ops.extend(_real_server_ops(cfg, want_rs, old.get("real_servers") or [], exact))
    if state == "overridden":
        for svc in have:
            if service_key(svc) not in want_keys and owns(svc):
                ops.append({"action": DEL_SERVICE, "service": service_config(svc)})
    return sorted(ops, key=lambda op: _ORDER[op["action"]])


def plan_real_server(svc: dict, want_rs: dict, state: str = "present") -> list[dict]:
    """Ops for one real server of one existing service (``svc`` as dumped, with real_servers)."""
    cfg = service_config(svc)
    have_rs = svc.get("real_servers") or []
    if state == "absent":
        key = real_server_key(want_rs)
        return [{"action": DEL_REAL_SERVER, "service": cfg, "real_server": real_server_config(r)}
                for r in have_rs if real_server_key(r) == key]
    return _real_server_ops(cfg, [want_rs], have_rs, exact=False)


def apply_ops(have: t.Sequence[dict], ops: t.Iterable[dict]) -> list[dict]:
    """Predict the table after ``ops`` (check mode's ``after``; also the planner's property tests).

    ``have`` is not modified: a service is copied when an op first touches it.
    """
    table = {service_key(s): s for s in have}
    touched: set = set()
    for op in ops:
        action, cfg = op["action"], op["service"]
        key = service_key(cfg)
        if action == ADD_SERVICE:
            if key in table:
                raise PlanError(service_label(cfg), "already exists")
            table[key] = dict(copy.deepcopy(cfg), real_servers=[])
            touched.add(key)
            continue
        if key not in table:
            raise PlanError(service_label(cfg), "does not exist")
        if action == DEL_SERVICE:
            del table[key]
            continue
        if key not in touched:
            old = table[key]
            table[key] = dict(old, real_servers=list(old.get("real_servers") or []))
            touched.add(key)
        svc = table[key]
        if action == SET_SERVICE:
            svc.update(copy.deepcopy(cfg))
            continue
        rs = op["real_server"]
        rkey = real_server_key(rs)
        others = [r for r in svc["real_servers"] if real_server_key(r) != rkey]
        exists = len(others) != len(svc["real_servers"])
        if action == ADD_REAL_SERVER and exists:
            raise PlanError(service_label(cfg), "real server %s already exists" % (rkey,))
        if action in (SET_REAL_SERVER, DEL_REAL_SERVER) and not exists:
            raise PlanError(service_label(cfg), "real server %s does not exist" % (rkey,))
        svc["real_servers"] = others if action == DEL_REAL_SERVER else others + [dict(rs)]
    return sort_table(s if "real_servers" in s else dict(s, real_servers=[]) for s in table.values())


def inverse_ops(done: t.Sequence[dict], have: t.Sequence[dict]) -> list[dict]:
    """Ops that undo ``done`` (applied in order to ``have``): the rollback of a failed apply."""
    have_by_key = {service_key(s): s for s in have}
    undo: list[dict] = []
    for op in reversed(done):
        action, svc = op["action"], op["service"]
        if action == ADD_SERVICE:
            undo.append({"action": DEL_SERVICE, "service": svc})
        elif action == SET_SERVICE:
            undo.append({"action": SET_SERVICE, "service": op["before"], "before": svc})
        elif action == DEL_SERVICE:
            old = have_by_key[service_key(svc)]
            undo.append({"action": ADD_SERVICE, "service": service_config(old)})
            undo.extend({"action": ADD_REAL_SERVER, "service": service_config(old), "real_server": real_server_config(r)}
                        for r in old.get("real_servers") or [])
        elif action == ADD_REAL_SERVER:
            undo.append({"action": DEL_REAL_SERVER, "service": svc, "real_server": op["real_server"]})
        elif action == SET_REAL_SERVER:
            undo.append({"action": SET_REAL_SERVER, "service": svc, "real_server": op["before"], "before": op["real_server"]})
        elif action == DEL_REAL_SERVER:
            undo.append({"action": ADD_REAL_SERVER, "service": svc, "real_server": op["real_server"]})
    return undo


def split_drain(ops: t.Sequence[dict], have: t.Sequence[dict]) -> tuple[list[dict], list[dict], list[tuple]]:
    """Split ops for draining: (first, removals, waits).

    ``first`` is every op that adds or edits, plus a weight-0 ``set`` for each real server
    that is about to be removed (alone or with its service) and still has weight; ``removals``
    are the deletes, to run once ``waits`` — (service key, real server key) pairs whose
    connections must end — are empty or timed out. UDP real servers are not waited for.
    """
    have_by_key = {service_key(s): s for s in have}
    first = [op for op in ops if op["action"] not in (DEL_REAL_SERVER, DEL_SERVICE)]
    removals = [op for op in ops if op["action"] in (DEL_REAL_SERVER, DEL_SERVICE)]
    waits: list[tuple] = []
    for op in removals:
        svc = have_by_key.get(service_key(op["service"]))
        if svc is None:
            continue
        targets = svc.get("real_servers") or [] if op["action"] == DEL_SERVICE else [op["real_server"]]
        for rs in targets:
            cfg = real_server_config(rs)
            if cfg["weight"]:
                first.append({"action": SET_REAL_SERVER, "service": service_config(svc),
                              "real_server": dict(cfg, weight=0), "before": cfg})
            if svc.get("protocol") != "udp":
                waits.append((service_key(svc), real_server_key(rs)))
    return first, removals, waits


def _ranges(values: t.Any, field: str, high: int) -> list[tuple[int, int]]:
    out = []
    for i, value in enumerate(values or []):
        text = str(value).strip()
        low, sep, top = text.partition("-")
        try:
            first, last = int(low), int(top) if sep else int(low)
        except ValueError:
            raise IPVSValidationError("%s[%d]" % (field, i), "%r is not a number or a range like 100-199" % value) from None
        if not 0 <= first <= last <= high:
            raise IPVSValidationError("%s[%d]" % (field, i), "%r is not a range within 0..%d" % (value, high))
        out.append((first, last))
    return out


def ownership(owned: t.Mapping[str, t.Any] | None) -> t.Callable[[dict], bool]:
    """A predicate telling whether a service is owned, from the ``owned`` option (None: all)."""
    if not owned:
        return lambda svc: True
    nets = []
    for i, value in enumerate(owned.get("addresses") or []):
        try:
            nets.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise IPVSValidationError("owned.addresses[%d]" % i, "%r is not an address or network" % value) from None
    ports = _ranges(owned.get("ports"), "owned.ports", 65535)
    marks = _ranges(owned.get("fwmarks"), "owned.fwmarks", 2 ** 32 - 1)

    def owns(svc: t.Mapping[str, t.Any]) -> bool:
        if svc.get("fwmark") is not None:
            return bool(marks) and any(a <= svc["fwmark"] <= b for a, b in marks)
        if not nets and not ports:
            return False
        addr = ipaddress.ip_address(svc["address"])
        return ((not nets or any(addr.version == n.version and addr in n for n in nets))
                and (not ports or any(a <= svc["port"] <= b for a, b in ports)))
    return owns
