# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the keepalived role: pre-flight checks across the directors, resolved settings.

The logic lives in module_utils/_keepalived_preflight.py (pure, unit-tested); these filters
only gather the directors' records from ``hostvars``.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.module_utils import _keepalived_preflight as preflight

RECORD_FACT = "_keepalived_record"


def _get(vars_: t.Any, key: str, default: t.Any = None) -> t.Any:
    try:
        return vars_[key] if key in vars_ else default
    except Exception:  # an undefined or broken variable of another host: treat as unset
        return default


def records(hostvars: t.Any, hosts: t.Iterable[str]) -> dict[str, t.Any]:
    """The record of each director: the fact the role set in this play, else its inventory variables."""
    if not isinstance(hostvars, t.Mapping):
        raise AnsibleFilterError("keepalived filters take hostvars as input (hostvars | lvs.ipvs.keepalived_...)")
    out: dict[str, t.Any] = {}
    hosts = [str(h) for h in (hosts or [])]
    base: dict[str, t.Any] = {}
    for host in hosts:
        fact = _get(hostvars[host], RECORD_FACT) if host in hostvars else None
        if isinstance(fact, t.Mapping):
            base = {"group": fact.get("group"), "group_hosts": fact.get("group_hosts")}
            break
    for host in hosts:
        if host not in hostvars:
            out[host] = None
            continue
        hv = hostvars[host]
        fact = _get(hv, RECORD_FACT)
        if isinstance(fact, t.Mapping):
            out[host] = dict(fact, in_play=True)
            continue
        record: dict[str, t.Any] = {"in_play": False}
        for key in preflight.RECORD_KEYS:
            value = _get(hv, "keepalived_" + key)
            if value is not None:
                record[key] = value
        if "address" not in record:
            record["address"] = _get(hv, "ansible_host")
        for key in ("group", "group_hosts"):
            record.setdefault(key, base.get(key))
        out[host] = record
    return out


def keepalived_preflight(hostvars: t.Any, hosts: t.Iterable[str]) -> list[str]:
    """Every problem of the directors' keepalived settings ([] when all is well)."""
    return preflight.check(records(hostvars, hosts))


def keepalived_config(hostvars: t.Any, hosts: t.Iterable[str], host: str) -> dict[str, t.Any]:
    """The settings the keepalived template renders for ``host``."""
    try:
        return preflight.resolve(records(hostvars, hosts), str(host))
    except preflight.PreflightError as exc:
        raise AnsibleFilterError("keepalived settings of %s:\n%s" % (host, "\n".join(exc.problems))) from None


def keepalived_drain(config: t.Any, live: t.Any) -> dict[str, t.Any]:
    """The real servers leaving this director's keepalived pool and the virtual servers that drain them."""
    if not isinstance(config, t.Mapping) or "virtual_servers" not in config:
        raise AnsibleFilterError("keepalived_drain takes the settings of lvs.ipvs.keepalived_config as input")
    return preflight.draining(config, live)


class FilterModule:
    """keepalived role filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "keepalived_preflight": keepalived_preflight,
            "keepalived_config": keepalived_config,
            "keepalived_drain": keepalived_drain,
        }
