"""Rolling maintenance plan: entries per director, the healthy floor, drain and restore checks, the records
of the weights to restore and the rescue report."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.filter.lvs_rolling import FilterModule
from ansible_collections.lvs.ipvs.plugins.module_utils._rolling import (
    RecordError, connections, merge_records, parse_record, plan, present, record_name, records, rescue_report, restored)


def rs(address, weight=1, active=0, inactive=0, port=8080):
    return {"address": address, "port": port, "forwarding": "nat", "weight": weight, "upper_threshold": 0,
            "lower_threshold": 0, "tunnel_type": None, "tunnel_port": None, "tunnel_checksum": None,
            "active_connections": active, "inactive_connections": inactive}


def table(*servers):
    return [{"protocol": "tcp", "family": "ipv4", "address": "192.0.2.10", "port": 80, "fwmark": None,
             "real_servers": list(servers)}]


TABLES = {"dir1": table(rs("10.0.0.11", 3), rs("10.0.0.12", 2), rs("10.0.0.13", 1)),
          "dir2": table(rs("10.0.0.11", 3), rs("10.0.0.12", 2), rs("10.0.0.13", 1))}


def test_plan_lists_the_entries_on_every_director():
    out = plan(TABLES, ["10.0.0.11"], 2)
    assert out["problems"] == [] and out["missing"] == []
    assert [(e["director"], e["service_label"], e["real_server"]["address"], e["real_server"]["weight"])
            for e in out["entries"]] == [("dir1", "tcp 192.0.2.10:80", "10.0.0.11", 3),
                                         ("dir2", "tcp 192.0.2.10:80", "10.0.0.11", 3)]
    assert out["entries"][0]["service"] == {"protocol": "tcp", "address": "192.0.2.10", "port": 80}


def test_floor_of_healthy_real_servers_is_never_crossed():
    assert plan(TABLES, ["10.0.0.11", "10.0.0.12"], 2)["problems"] == [
        "director dir1, service tcp 192.0.2.10:80: taking out 10.0.0.11, 10.0.0.12 leaves 1 healthy real server "
        "(10.0.0.13), below the floor of 2",
        "director dir2, service tcp 192.0.2.10:80: taking out 10.0.0.11, 10.0.0.12 leaves 1 healthy real server "
        "(10.0.0.13), below the floor of 2",
    ]


def test_quiesced_real_servers_do_not_count_as_healthy():
    tables = {"dir1": table(rs("10.0.0.11"), rs("10.0.0.12", 0), rs("10.0.0.13", 0))}
    assert plan(tables, ["10.0.0.11"], 1)["problems"] == [
        "director dir1, service tcp 192.0.2.10:80: taking out 10.0.0.11 leaves 0 healthy real servers (none), "
        "below the floor of 1"]


def test_missing_real_server_is_reported_not_planned():
    out = plan(TABLES, ["10.0.0.99"], 1)
    assert out == {"entries": [], "problems": [], "missing": ["10.0.0.99"]}


def test_connections_present_and_restored():
    entries = plan(TABLES, ["10.0.0.11"], 1)["entries"]
    busy = copy.deepcopy(TABLES)
    busy["dir1"][0]["real_servers"][0].update(weight=0, active_connections=2, inactive_connections=5)
    assert connections(busy, entries) == 2
    assert connections(busy, entries, inactive=True) == 7
    assert restored(busy, entries) == ["director dir1, service tcp 192.0.2.10:80, real server 10.0.0.11:8080: weight 0, "
                                       "expected 3"]
    gone = copy.deepcopy(TABLES)
    del gone["dir2"][0]["real_servers"][0]
    assert [e["director"] for e in present(gone, entries)] == ["dir1"]
    assert restored(gone, entries) == ["director dir2, service tcp 192.0.2.10:80, real server 10.0.0.11:8080: weight "
                                       "missing, expected 3"]
    assert restored(TABLES, entries) == []


def test_filters_take_looped_results_or_one_result():
    filters = FilterModule().filters()
    looped = {"results": [{"item": d, "services": s} for d, s in TABLES.items()]}
    entries = filters["lvs_rolling_plan"](looped, ["10.0.0.12"], 1)["entries"]
    assert len(entries) == 2
    one = {"services": TABLES["dir1"], "changed": False}
    assert filters["lvs_rolling_connections"](one, [e for e in entries if e["director"] == "dir1"]) == 0
    assert filters["lvs_rolling_restored"](one, [e for e in entries if e["director"] == "dir1"]) == []


# -- records of the weights to restore ------------------------------------------------------------

DIR = "/var/lib/lvs.ipvs/rolling"


def recorded(tables, batch):
    """The records a run writes for ``batch`` from ``tables``: director -> [(path, text)]."""
    out = {}
    for rec in records(plan(tables, batch, 1)["entries"]):
        out.setdefault(rec["director"], []).append((f"{DIR}/{rec['name']}", json.dumps(rec["record"])))
    return out


def drained(tables, address):
    """``tables`` as a run killed after its drain leaves them: ``address`` at weight 0."""
    out = copy.deepcopy(tables)
    for services in out.values():
        for server in services[0]["real_servers"]:
            if server["address"] == address:
                server["weight"] = 0
    return out


def test_record_names_the_service_the_real_server_and_the_weight():
    out = records(plan(TABLES, ["10.0.0.11"], 1)["entries"])
    assert [(r["director"], r["name"]) for r in out] == [("dir1", "10.0.0.11.json"), ("dir2", "10.0.0.11.json")]
    assert out[0]["record"] == {
        "format": 1, "director": "dir1", "real_server": "10.0.0.11",
        "entries": [{"service": {"protocol": "tcp", "address": "192.0.2.10", "port": 80},
                     "service_label": "tcp 192.0.2.10:80",
                     "real_server": {"address": "10.0.0.11", "port": 8080, "forwarding": "nat", "weight": 3,
                                     "upper_threshold": 0, "lower_threshold": 0, "tunnel_type": None,
                                     "tunnel_port": None, "tunnel_checksum": None}}]}
    assert record_name("2001:DB8::0:11") == "2001_db8__11.json"
    assert record_name("[2001:db8::11]") == "2001_db8__11.json"


def test_no_record_keeps_the_table_weights():
    out = merge_records(plan(TABLES, ["10.0.0.11"], 1), {}, ["10.0.0.11"], DIR)
    assert out["recovered"] == [] and out["problems"] == [] and out["foreign"] == []
    assert [e["real_server"]["weight"] for e in out["entries"]] == [3, 3]
    assert [e["weight_source"] for e in out["entries"]] == ["table", "table"]
    assert out["record_names"] == ["10.0.0.11.json"] and out["record_dir"] == DIR
    assert out["summary"][0] == ("director dir1, service tcp 192.0.2.10:80, real server 10.0.0.11:8080: restore weight 3 "
                                 "(read from the table)")
    assert out["records"] == records(out["entries"])


def test_a_record_of_a_killed_run_gives_the_weight_not_the_drained_table():
    left = recorded(TABLES, ["10.0.0.11"])  # written before the drain
    table_now = drained(TABLES, "10.0.0.11")  # the run was killed after the drain
    out = merge_records(plan(table_now, ["10.0.0.11"], 2), left, ["10.0.0.11"], DIR)
    assert out["problems"] == []
    assert [(e["director"], e["real_server"]["weight"], e["weight_source"]) for e in out["entries"]] == [
        ("dir1", 3, f"{DIR}/10.0.0.11.json"), ("dir2", 3, f"{DIR}/10.0.0.11.json")]
    assert out["recovered"] == [
        f"director {d}, service tcp 192.0.2.10:80, real server 10.0.0.11:8080: weight 3 from the record "
        f"{DIR}/10.0.0.11.json of an interrupted run, not 0 from the table" for d in ("dir1", "dir2")]
    # the record written again before this run's drain holds the original weight, not 0
    assert [r["record"]["entries"][0]["real_server"]["weight"] for r in out["records"]] == [3, 3]
    # what the restore and the verification then expect
    assert restored(TABLES, out["entries"]) == [] and restored(table_now, out["entries"])


def test_each_director_uses_its_own_record():
    left = recorded(TABLES, ["10.0.0.11"])
    other = copy.deepcopy(TABLES)
    other["dir2"][0]["real_servers"][0]["weight"] = 7
    left["dir2"] = recorded(other, ["10.0.0.11"])["dir2"]
    out = merge_records(plan(drained(TABLES, "10.0.0.11"), ["10.0.0.11"], 1), left, ["10.0.0.11"])
    assert [(e["director"], e["real_server"]["weight"]) for e in out["entries"]] == [("dir1", 3), ("dir2", 7)]
    # a director without a record keeps its table's weight
    out = merge_records(plan(drained(TABLES, "10.0.0.11"), ["10.0.0.11"], 1), {"dir1": left["dir1"]}, ["10.0.0.11"])
    assert [(e["director"], e["real_server"]["weight"]) for e in out["entries"]] == [("dir1", 3), ("dir2", 0)]


def test_records_outside_the_batch_are_reported_not_used():
    left = recorded(TABLES, ["10.0.0.12"])
    out = merge_records(plan(drained(TABLES, "10.0.0.12"), ["10.0.0.11"], 1), left, ["10.0.0.11"])
    assert out["recovered"] == [] and out["problems"] == []
    assert out["foreign"] == [
        f"director {d}: {DIR}/10.0.0.12.json, left by an interrupted run, is of a real server outside this batch; "
        "its weights are restored only by a run whose batch has that real server" for d in ("dir1", "dir2")]
    assert {e["real_server"]["address"] for e in out["entries"]} == {"10.0.0.11"}


def test_recorded_entry_gone_from_the_table_is_stale():
    left = recorded(TABLES, ["10.0.0.11"])
    gone = drained(TABLES, "10.0.0.11")
    del gone["dir2"][0]["real_servers"][0]
    out = merge_records(plan(gone, ["10.0.0.11"], 1), left, ["10.0.0.11"])
    assert [e["director"] for e in out["entries"]] == ["dir1"]
    assert out["stale"] == [f"director dir2, service tcp 192.0.2.10:80, real server 10.0.0.11:8080, weight 3 "
                            f"({DIR}/10.0.0.11.json): recorded but no longer in the table, not restored"]


@pytest.mark.parametrize("text, why", [
    ("{not json", "not valid JSON"),
    ('{"format": 2, "real_server": "10.0.0.11", "entries": []}', "not a record of format 1"),
    ('{"format": 1, "entries": []}', "no real_server or entries"),
    ('{"format": 1, "real_server": "10.0.0.11", "entries": [{"service": {}}]}', "entries[0]: no service or real_server"),
    ('{"format": 1, "real_server": "10.0.0.11", "entries": [{"service": {"fwmark": 1}, "real_server": '
     '{"address": "10.0.0.11", "port": 80, "weight": -1}}]}', "entries[0]: no address, port or weight"),
    ('{"format": 1, "real_server": "10.0.0.11", "entries": [{"service": {"fwmark": 1}, "real_server": '
     '{"address": "10.0.0.11", "port": 80, "weight": true}}]}', "entries[0]: no address, port or weight"),
    ('{"format": 1, "real_server": "10.0.0.11", "entries": [{"service": {"protocol": "tcp"}, "real_server": '
     '{"address": "10.0.0.11", "port": 80, "weight": 1}}]}', "the service has no fwmark nor address and port"),
    ('{"format": 1, "real_server": "10.0.0.11", "entries": [{"service": {"fwmark": 1}, "real_server": '
     '{"address": "10.0.0.12", "port": 80, "weight": 1}}]}', "real server 10.0.0.12, the record is of 10.0.0.11"),
    ('{"format": 1, "real_server": "10.0.0.12", "entries": []}', "it is the record of 10.0.0.12"),
], ids=["json", "format", "fields", "entry", "negative-weight", "bool-weight", "service", "other-server", "other-file"])
def test_a_record_that_cannot_be_trusted_stops_the_run(text, why):
    out = merge_records(plan(TABLES, ["10.0.0.11"], 1), {"dir1": [(f"{DIR}/10.0.0.11.json", text)]}, ["10.0.0.11"])
    assert len(out["problems"]) == 1, out["problems"]
    assert out["problems"][0].startswith(f"director dir1, record {DIR}/10.0.0.11.json: ")
    assert why in out["problems"][0]
    assert out["problems"][0].endswith("it may hold the weights an interrupted run did not restore: fix it or remove it")
    assert [e["real_server"]["weight"] for e in out["entries"]] == [3, 3]


def test_parse_record_round_trips_what_records_writes():
    for rec in records(plan(TABLES, ["10.0.0.11", "10.0.0.12"], 1)["entries"]):
        assert parse_record(json.dumps(rec["record"])) == rec["record"]
    with pytest.raises(RecordError):
        parse_record("[]")


def test_fwmark_and_ipv6_entries_match_their_records():
    tables = {"dir1": [{"protocol": None, "family": "ipv6", "address": None, "port": None, "fwmark": 7,
                        "real_servers": [rs("2001:db8::11", 4, port=80)]}]}
    left = {"dir1": [(f"{DIR}/{r['name']}", json.dumps(r["record"])) for r in records(plan(tables, ["2001:db8::11"], 0)["entries"])]}
    assert left["dir1"][0][0] == f"{DIR}/2001_db8__11.json"
    out = merge_records(plan(drained(tables, "2001:db8::11"), ["2001:DB8::11"], 0), left, ["2001:DB8::11"])
    assert [e["real_server"]["weight"] for e in out["entries"]] == [4]
    assert out["recovered"][0].startswith("director dir1, service fwmark 7, real server [2001:db8::11]:80: weight 4")


def test_rescue_report_says_what_was_restored_and_what_failed():
    entries = plan(TABLES, ["10.0.0.11"], 1)["entries"]
    ok = rescue_report(entries, {}, [(e, True, "") for e in entries])
    assert ok["failed"] == [] and ok["clean"] == ["dir1", "dir2"]
    assert ok["message"] == ("The weights were restored: director dir1, service tcp 192.0.2.10:80, real server "
                             "10.0.0.11:8080 weight 3; director dir2, service tcp 192.0.2.10:80, real server "
                             "10.0.0.11:8080 weight 3")
    absent = rescue_report(entries, {}, [(entries[0], True, "")])
    assert absent["clean"] == ["dir1", "dir2"]
    assert "Not in the table any more (a health checker removed it; it adds it back): director dir2" in absent["message"]
    bad = rescue_report(entries, {"dir2": "unreachable"}, [(entries[0], False, "Operation not permitted")])
    assert bad["restored"] == [] and bad["clean"] == []
    assert bad["failed"] == [
        "director dir1, service tcp 192.0.2.10:80, real server 10.0.0.11:8080 weight 3: the restore failed "
        "(Operation not permitted)",
        "director dir2, service tcp 192.0.2.10:80, real server 10.0.0.11:8080 weight 3: not restored, the table "
        "could not be read (unreachable)"]
    assert bad["message"].startswith("RESTORE FAILED: ")
    assert bad["message"].endswith("the records of the weights are kept on directors dir1, dir2 for the next run")
    assert rescue_report([], {}, [])["message"] == "Nothing was drained"


def slurped(found):
    """What ansible.builtin.slurp looped over ``find results | subelements('files')`` registers."""
    results = []
    for director, files in found.items():
        for path, text in files:
            results.append({"item": [{"item": director, "files": []}, {"path": path}], "source": path,
                            "content": base64.b64encode(text.encode()).decode(), "encoding": "base64"})
    return {"results": results, "changed": False}


def test_filters_merge_slurped_records_and_report_the_rescue():
    filters = FilterModule().filters()
    looped = {"results": [{"item": d, "services": s} for d, s in drained(TABLES, "10.0.0.11").items()]}
    the_plan = filters["lvs_rolling_plan"](looped, ["10.0.0.11"], 1)
    out = filters["lvs_rolling_merge_records"](the_plan, slurped(recorded(TABLES, ["10.0.0.11"])), ["10.0.0.11"], DIR)
    assert [e["real_server"]["weight"] for e in out["entries"]] == [3, 3] and len(out["recovered"]) == 2
    # no record found: the slurp loop had no item
    empty = filters["lvs_rolling_merge_records"](the_plan, {"results": [], "skipped": True, "msg": "No items"}, ["10.0.0.11"])
    assert [e["real_server"]["weight"] for e in empty["entries"]] == [0, 0]
    with pytest.raises(AnsibleFilterError, match="could not be read"):
        filters["lvs_rolling_merge_records"](the_plan, {"results": [{"item": {"director": "dir1", "path": "/x"},
                                                                     "failed": True, "msg": "Permission denied"}]}, [])
    with pytest.raises(AnsibleFilterError, match="subelements"):
        filters["lvs_rolling_merge_records"](the_plan, {"results": [{"item": "dir1", "content": ""}]}, [])

    # the rescue: dir2's table could not be read; the restore on dir1 worked
    tables = {"results": [{"item": "dir1", "services": TABLES["dir1"]},
                          {"item": "dir2", "unreachable": True, "msg": "connection lost"}]}
    to_restore = filters["lvs_rolling_present"](tables, out["entries"], True)
    assert [e["director"] for e in to_restore] == ["dir1"]
    with pytest.raises(AnsibleFilterError):
        filters["lvs_rolling_present"](tables, out["entries"])
    restores = {"results": [{"item": to_restore[0], "changed": True}]}
    report = filters["lvs_rolling_rescue_report"](tables, out["entries"], restores)
    assert report["clean"] == ["dir1"]
    assert report["failed"] == ["director dir2, service tcp 192.0.2.10:80, real server 10.0.0.11:8080 weight 3: not "
                                "restored, the table could not be read (connection lost)"]
    failed = {"results": [{"item": to_restore[0], "failed": True, "msg": "boom"}]}
    assert filters["lvs_rolling_rescue_report"](tables, out["entries"], failed)["clean"] == []
