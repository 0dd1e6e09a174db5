# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/rolling_maintenance.yml (logic in module_utils/_rolling.py)."""

from __future__ import annotations

import base64
import binascii
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.module_utils import _rolling


def _results(results: t.Any, what: str) -> list[t.Any]:
    if isinstance(results, t.Mapping) and "results" in results:
        results = results["results"]
    elif isinstance(results, t.Mapping) and results.get("skipped"):
        return []
    if not isinstance(results, (list, tuple)):
        raise AnsibleFilterError("lvs_rolling_*: the input must be the registered result of %s (looped)" % what)
    return list(results)


def _tables(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]] = (), unreadable: dict[str, str] | None = None) -> dict[str, t.Any]:
    """director -> services, from a looped lvs.ipvs.ipvs_info result (loop over the directors), or
    from one ipvs_info result, which then stands for the directors of ``entries``.

    A director whose table is missing is an error, unless ``unreadable`` is given: it is then
    left out and recorded there (director -> why).
    """
    if isinstance(results, t.Mapping) and "services" in results:
        return {str(e["director"]): results["services"] for e in entries}
    out = {}
    for item in _results(results, "lvs.ipvs.ipvs_info (looped over the directors)"):
        if not isinstance(item, t.Mapping) or item.get("failed") or item.get("unreachable") or "services" not in item:
            director = item.get("item") if isinstance(item, t.Mapping) else item
            if unreadable is None:
                raise AnsibleFilterError("lvs_rolling_*: a director's table is missing (item %r)" % director)
            unreadable[str(director)] = str(item.get("msg") or "no table") if isinstance(item, t.Mapping) else "no table"
            continue
        out[str(item.get("item"))] = item["services"]
    return out


def lvs_rolling_plan(results: t.Any, batch: t.Iterable[t.Any], floor: int = 1) -> dict[str, t.Any]:
    return _rolling.plan(_tables(results), list(batch or []), int(floor))


def lvs_rolling_connections(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]], inactive: bool = False) -> int:
    return _rolling.connections(_tables(results, entries), entries, bool(inactive))


def lvs_rolling_present(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]],
                        skip_unreadable: bool = False) -> list[dict[str, t.Any]]:
    if not skip_unreadable:
        return _rolling.present(_tables(results, entries), entries)
    unreadable: dict[str, str] = {}
    tables = _tables(results, entries, unreadable)
    return _rolling.present(tables, [e for e in entries if str(e["director"]) not in unreadable])


def lvs_rolling_restored(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]]) -> list[str]:
    return _rolling.restored(_tables(results, entries), entries)


def _record_source(result: t.Mapping[str, t.Any]) -> tuple[str, str]:
    """(director, path) of a slurp result looped over ``find results | subelements('files')``
    (or over mappings with ``director`` and ``path``)."""
    item = result.get("item")
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], t.Mapping) and isinstance(item[1], t.Mapping):
        return str(item[0].get("item")), str(item[1].get("path") or result.get("source"))
    if isinstance(item, t.Mapping) and "director" in item:
        return str(item["director"]), str(item.get("path") or result.get("source"))
    raise AnsibleFilterError("lvs_rolling_merge_records: loop the slurp over the find results' files "
                             "(find_results.results | subelements('files')); item %r" % (item,))


def lvs_rolling_merge_records(plan: t.Mapping[str, t.Any], slurped: t.Any, batch: t.Iterable[t.Any],
                              record_dir: str = "") -> dict[str, t.Any]:
    if not isinstance(plan, t.Mapping) or "entries" not in plan:
        raise AnsibleFilterError("lvs_rolling_merge_records: the input must be a plan of lvs.ipvs.lvs_rolling_plan")
    found: dict[str, list[tuple[str, str]]] = {}
    for result in _results(slurped, "ansible.builtin.slurp"):
        if not isinstance(result, t.Mapping) or result.get("skipped"):
            continue
        director, path = _record_source(result)
        if result.get("failed") or "content" not in result:
            raise AnsibleFilterError("lvs_rolling_merge_records: director %s, record %s could not be read: %s"
                                     % (director, path, result.get("msg")))
        try:
            text = base64.b64decode(result["content"]).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            text = ""
        found.setdefault(director, []).append((path, text))
    return _rolling.merge_records(plan, found, list(batch or []), str(record_dir or ""))


def lvs_rolling_rescue_report(results: t.Any, entries: t.Sequence[t.Mapping[str, t.Any]], restores: t.Any) -> dict[str, t.Any]:
    unreadable: dict[str, str] = {}
    _tables(results, entries, unreadable)
    outcomes = []
    for result in _results(restores, "lvs.ipvs.ipvs_real_server"):
        if not isinstance(result, t.Mapping) or result.get("skipped") or not isinstance(result.get("item"), t.Mapping):
            continue
        ok = not (result.get("failed") or result.get("unreachable"))
        outcomes.append((result["item"], ok, "" if ok else str(result.get("msg") or "failed")))
    return _rolling.rescue_report(entries, unreadable, outcomes)


class FilterModule:
    """Rolling maintenance filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "lvs_rolling_plan": lvs_rolling_plan,
            "lvs_rolling_connections": lvs_rolling_connections,
            "lvs_rolling_present": lvs_rolling_present,
            "lvs_rolling_restored": lvs_rolling_restored,
            "lvs_rolling_merge_records": lvs_rolling_merge_records,
            "lvs_rolling_rescue_report": lvs_rolling_rescue_report,
        }
