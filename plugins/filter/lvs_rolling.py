# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/rolling_maintenance.yml (logic in module_utils/_rolling.py)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.module_utils import _rolling


def _tables(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]] = ()) -> dict[str, t.Any]:
    """director -> services, from a looped lvs.ipvs.ipvs_info result (loop over the directors), or
    from one ipvs_info result, which then stands for the directors of ``entries``."""
    if isinstance(results, t.Mapping) and "services" in results:
        return {str(e["director"]): results["services"] for e in entries}
    if isinstance(results, t.Mapping) and "results" in results:
        results = results["results"]
    if not isinstance(results, (list, tuple)):
        raise AnsibleFilterError("lvs_rolling_*: the input must be the registered result of lvs.ipvs.ipvs_info "
                                 "(looped over the directors)")
    out = {}
    for item in results:
        if not isinstance(item, t.Mapping) or item.get("failed") or "services" not in item:
            raise AnsibleFilterError("lvs_rolling_*: a director's table is missing (item %r)"
                                     % (item.get("item") if isinstance(item, t.Mapping) else item))
        out[str(item.get("item"))] = item["services"]
    return out


def lvs_rolling_plan(results: t.Any, batch: t.Iterable[t.Any], floor: int = 1) -> dict[str, t.Any]:
    return _rolling.plan(_tables(results), list(batch or []), int(floor))


def lvs_rolling_connections(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]], inactive: bool = False) -> int:
    return _rolling.connections(_tables(results, entries), entries, bool(inactive))


def lvs_rolling_present(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]]) -> list[dict[str, t.Any]]:
    return _rolling.present(_tables(results, entries), entries)


def lvs_rolling_restored(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]]) -> list[str]:
    return _rolling.restored(_tables(results, entries), entries)


class FilterModule:
    """Rolling maintenance filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "lvs_rolling_plan": lvs_rolling_plan,
            "lvs_rolling_connections": lvs_rolling_connections,
            "lvs_rolling_present": lvs_rolling_present,
            "lvs_rolling_restored": lvs_rolling_restored,
        }
