"""ipvs_table against the real kernel (UML lab): every state, ownership, rollback, drain, round trip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save, render_restore, render_save
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table
from tests.support.ansible import ansible_playbook
from tests.support.modules import ipvsadm, quartet, run_module, saved

pytestmark = pytest.mark.lab

GOLDEN = Path(__file__).resolve().parents[3] / "unit" / "golden"

WEB = {"address": "10.0.0.1", "port": 80, "scheduler": "rr",
       "real_servers": [{"address": "10.0.1.1", "forwarding": "nat", "weight": 2},
                        {"address": "10.0.1.2", "forwarding": "nat", "upper_threshold": 100, "lower_threshold": 10}]}
DNS = {"protocol": "udp", "address": "10.0.0.1", "port": 53, "scheduler": "sh", "scheduler_flags": ["sh-port"],
       "real_servers": [{"address": "10.0.1.3", "forwarding": "dr"}]}
MARK = {"fwmark": 7, "family": "ipv6", "persistence_timeout": 300, "persistence_netmask": "64",
        "real_servers": [{"address": "2001:db8::7", "port": 443, "forwarding": "tunnel", "tunnel_type": "gue",
                          "tunnel_port": 6080, "tunnel_checksum": "csum"}]}


def restore(ns, text):
    subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", "-R"], input=text, text=True, check=True, timeout=60)


def test_merged_builds_a_table_from_empty_quartet(netns):
    ns = netns()
    config = [WEB, DNS, MARK]
    checked, applied = quartet("ipvs_table", {"config": config, "state": "merged", "return_tables": True}, ns)
    assert saved(ns) == render_save(parse_save(render_restore(applied["after"])))
    assert applied["before"] == [] and len(applied["commands"]) == 7
    assert applied["summary"] == checked["summary"] == {
        "services": {"before": 0, "after": 3}, "real_servers": {"before": 0, "after": 4},
        "ops": {"add_service": 3, "add_real_server": 4}}
    assert "-> 10.0.1.2:80" in ipvsadm(ns, "-Ln", "--thresholds")
    gathered = run_module("ipvs_table", {"state": "gathered", "namespace": ns})["gathered"]
    # Round trip: what gathered returns, fed back, changes nothing.
    again = run_module("ipvs_table", {"config": gathered, "state": "overridden", "namespace": ns})
    assert again["changed"] is False and again["commands"] == []


def test_weight_change_is_one_set_op_and_nothing_else_is_touched(netns):
    ns = netns()
    assert run_module("ipvs_table", {"config": [WEB, DNS], "namespace": ns})["changed"]
    edited = dict(WEB, real_servers=[dict(WEB["real_servers"][0], weight=5)])
    checked, applied = quartet("ipvs_table", {"config": [edited], "state": "merged"}, ns)
    assert applied["commands"] == ["ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 5"]
    assert "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 1" in saved(ns)


def test_replaced_overridden_deleted(netns):
    ns = netns()
    assert run_module("ipvs_table", {"config": [WEB, DNS, MARK], "namespace": ns})["changed"]
    web2 = dict(WEB, scheduler="wlc", real_servers=[{"address": "10.0.1.9", "forwarding": "nat"}])
    checked, applied = quartet("ipvs_table", {"config": [web2], "state": "replaced"}, ns)
    assert applied["commands"] == [
        "ipvsadm -E -t 10.0.0.1:80 -s wlc",
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.9:80 -m -w 1",
        "ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.1:80",
        "ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.2:80",
    ]
    assert saved(ns).count("-A ") == 3
    checked, applied = quartet("ipvs_table", {"config": [web2], "state": "overridden"}, ns)
    assert applied["commands"] == ["ipvsadm -D -u 10.0.0.1:53", "ipvsadm -D -f 7 -6"]
    assert saved(ns) == "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.9:80 -m -w 1\n"
    checked, applied = quartet("ipvs_table", {"config": [{"address": "10.0.0.1", "port": 80}], "state": "deleted"}, ns)
    assert applied["commands"] == ["ipvsadm -D -t 10.0.0.1:80"]
    assert saved(ns) == ""


def test_ownership_keeps_foreign_services_out_of_reach(netns):
    ns = netns()
    # A table shared with another tool, which owns fwmark 7 and udp :53.
    assert run_module("ipvs_table", {"config": [WEB, DNS, MARK], "namespace": ns})["changed"]
    owned = {"addresses": ["10.0.0.0/24"], "ports": ["80-443"]}
    checked, applied = quartet("ipvs_table", {"config": [], "state": "overridden", "owned": owned,
                                              "confirm_flush": True, "return_tables": True}, ns)
    assert applied["commands"] == ["ipvsadm -D -t 10.0.0.1:80"]
    assert [s["port"] for s in applied["before"]] == [80]
    assert applied["summary"]["services"] == {"before": 1, "after": 0}  # the owned part only
    assert saved(ns).count("-A ") == 2  # udp :53 and fwmark 7 survive
    refused = run_module("ipvs_table", {"config": [DNS], "owned": owned, "namespace": ns})
    assert refused.get("failed")
    assert refused["msg"] == "config[0]: service udp 10.0.0.1:53 is outside what this task owns (owned)"
    gathered = run_module("ipvs_table", {"state": "gathered", "owned": {"fwmarks": ["1-9"]}, "namespace": ns})
    assert [s["fwmark"] for s in gathered["gathered"]] == [7]


def test_flush_needs_confirmation(netns):
    ns = netns()
    assert run_module("ipvs_table", {"config": [WEB], "namespace": ns})["changed"]
    for state in ("overridden", "deleted"):
        result = run_module("ipvs_table", {"config": [], "state": state, "namespace": ns})
        assert result.get("failed")
        assert result["msg"].startswith("config: empty with state=%s would remove every owned service" % state)
    assert saved(ns).count("-A ") == 1
    flushed = run_module("ipvs_table", {"state": "deleted", "confirm_flush": True, "namespace": ns})
    assert flushed["changed"] and saved(ns) == ""


def test_kernel_rejection_mid_plan_rolls_back_to_before(netns):
    ns = netns()
    assert run_module("ipvs_table", {"config": [DNS], "namespace": ns})["changed"]
    before = saved(ns)
    thresholds = ipvsadm(ns, "-Ln", "--thresholds")
    # Valid input, but this kernel has no twos scheduler: the third of five ops fails in the kernel
    # after the DNS service was removed and WEB was added.
    config = [WEB, {"address": "10.0.0.2", "port": 80, "scheduler": "twos", "real_servers": [{"address": "10.0.1.5"}]}]
    result = run_module("ipvs_table", {"config": config, "state": "overridden", "namespace": ns})
    assert result.get("failed")
    assert result["msg"].startswith("tcp 10.0.0.2:80: add_service refused by the kernel: No such file or directory")
    assert "operations had been applied and were rolled back" in result["msg"]
    assert "ROLLBACK INCOMPLETE" not in result["msg"]
    assert saved(ns) == before
    assert ipvsadm(ns, "-Ln", "--thresholds") == thresholds


def test_persist_writes_the_rules_file_only_when_it_changes(netns, lab_share):
    ns = netns()
    path = Path(lab_share) / ("rules-%s" % ns)
    args = {"config": [WEB, MARK], "persist": True, "persist_path": str(path), "namespace": ns, "return_tables": True}
    checked = run_module("ipvs_table", args, check=True)
    assert checked["persisted"] == {"path": str(path), "changed": True} and not path.exists()
    first = run_module("ipvs_table", args)
    assert first["persisted"]["changed"] is True
    text = path.read_text()
    assert text == render_restore(first["after"]) and "-x 100 -y 10" in text
    mtime = path.stat().st_mtime_ns
    second = run_module("ipvs_table", args)
    assert second["changed"] is False and second["persisted"]["changed"] is False
    assert path.stat().st_mtime_ns == mtime
    # The file restores the same table (thresholds included) in an empty namespace.
    other = netns()
    restore(other, text)
    assert ipvsadm(other, "-Ln", "--thresholds") == ipvsadm(ns, "-Ln", "--thresholds")


def test_golden_round_trip_through_parsed_and_overridden(netns):
    """ipvsadm-save -n -> parsed -> overridden on an empty kernel -> ipvsadm -Sn identical."""
    for path in sorted(GOLDEN.glob("*.save")):
        if path.stem == "fwmark_max":  # ipvsadm's own listing order is unstable there
            continue
        ns = netns()
        parsed = run_module("ipvs_table", {"state": "parsed", "running_config": path.read_text()})["parsed"]
        result = run_module("ipvs_table", {"config": parsed, "state": "overridden", "namespace": ns,
                                           "confirm_flush": not parsed})
        assert not result.get("failed"), (path.name, result)
        assert saved(ns) == path.read_text(), path.name


def test_default_result_is_small_and_the_diff_holds_only_what_changes(netns):
    """By default: changed, commands, summary; the diff shows the changed service only; no before/after."""
    ns = netns()
    many = [dict(WEB, address="10.0.2.%d" % i) for i in range(1, 21)]
    assert run_module("ipvs_table", {"config": many, "namespace": ns})["changed"]
    edited = [dict(svc) for svc in many]
    edited[7] = dict(edited[7], real_servers=[dict(WEB["real_servers"][0], weight=9), WEB["real_servers"][1]])
    args = {"config": edited, "state": "overridden"}
    checked, applied = quartet("ipvs_table", args, ns)
    for result in (checked, applied):
        assert "before" not in result and "after" not in result
        assert result["commands"] == ["ipvsadm -e -t 10.0.2.8:80 -r 10.0.1.1:80 -m -w 9"]
        assert result["summary"] == {"services": {"before": 20, "after": 20}, "real_servers": {"before": 40, "after": 40},
                                     "ops": {"set_real_server": 1}}
        assert result["diff"]["before"] == ("-A -t 10.0.2.8:80 -s rr\n-a -t 10.0.2.8:80 -r 10.0.1.1:80 -m -w 2\n"
                                            "-a -t 10.0.2.8:80 -r 10.0.1.2:80 -m -w 1 -x 100 -y 10\n")
        assert result["diff"]["after"] == result["diff"]["before"].replace("-w 2", "-w 9")
    noop = run_module("ipvs_table", dict(args, namespace=ns), diff=True)
    assert noop["changed"] is False and noop["commands"] == [] and "diff" not in noop and "before" not in noop
    assert noop["summary"]["services"] == {"before": 20, "after": 20} and noop["summary"]["ops"] == {}
    gathered = run_module("ipvs_table", {"state": "gathered", "namespace": ns})
    assert len(gathered["gathered"]) == 20  # gathered still returns the table: that is its point


def test_persist_with_owned_writes_only_the_owned_services(netns, lab_share):
    ns = netns()
    path = Path(lab_share) / ("rules-owned-%s" % ns)
    # keepalived's service (udp :53) shares the table.
    assert run_module("ipvs_table", {"config": [DNS], "namespace": ns})["changed"]
    args = {"config": [WEB, MARK], "owned": {"addresses": ["10.0.0.0/24"], "ports": ["80"], "fwmarks": ["7"]},
            "persist": True, "persist_path": str(path), "namespace": ns}
    checked = run_module("ipvs_table", args, check=True)
    assert checked["persisted"]["changed"] is True and not path.exists()
    first = run_module("ipvs_table", args)
    assert first["changed"] and first["persisted"]["changed"] is True
    text = path.read_text()
    assert text == render_restore(normalize_table([WEB, MARK]))
    assert "-u 10.0.0.1:53" not in text and "-u 10.0.0.1:53" in saved(ns)
    again = run_module("ipvs_table", args)
    assert again["changed"] is False and again["persisted"]["changed"] is False
    # Without owned the whole table is the task's, and the file holds all of it.
    whole = run_module("ipvs_table", {"config": [WEB, MARK, DNS], "persist": True, "persist_path": str(path),
                                      "namespace": ns})
    assert whole["changed"] is True and whole["commands"] == [] and "-u 10.0.0.1:53" in path.read_text()


@pytest.mark.parametrize("fmt", ["yml", "json", "rules"])
def test_src_on_the_target_in_every_format(netns, tmp_path, fmt):
    ns = netns()
    config = [WEB, DNS, MARK]
    path = tmp_path / ("table." + fmt)
    if fmt == "yml":
        path.write_text(yaml.safe_dump({"lvs_table": config}))
    elif fmt == "json":
        path.write_text(json.dumps(config))
    else:
        path.write_text(render_restore(normalize_table(config)))
    checked, applied = quartet("ipvs_table", {"src": str(path), "remote_src": True, "state": "overridden"}, ns)
    assert len(applied["commands"]) == 7
    assert saved(ns) == render_save(normalize_table(config))


def test_src_on_the_controller_through_ansible_playbook(netns, tmp_path):
    """The action plugin finds src in the playbook's files/ and transfers it; nothing is templated."""
    ns = netns()
    (tmp_path / "files").mkdir()
    table = [dict(WEB, address="10.0.3.%d" % i) for i in range(1, 6)]
    # A Jinja-looking string would be templated as a variable; from src it is data.
    (tmp_path / "files" / "table.yml").write_text(yaml.safe_dump(table))
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"lvs.ipvs.ipvs_table": {"src": "table.yml", "state": "overridden", "namespace": ns},
                   "register": "run"},
                  {"ansible.builtin.copy": {"content": "{{ run | to_json }}", "dest": str(tmp_path / "result.json")}}]}]))
    done = ansible_playbook(playbook)
    assert done.rc == 0, done.output
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["changed"] is True and result["summary"]["services"] == {"before": 0, "after": 5}
    assert saved(ns).count("-A ") == 5
    again = ansible_playbook(playbook)
    assert again.rc == 0, again.output
    assert json.loads((tmp_path / "result.json").read_text())["changed"] is False
    missing = tmp_path / "missing.yml"
    missing.write_text(playbook.read_text().replace("table.yml", "nope.yml"))
    failed = ansible_playbook(missing)
    assert failed.rc != 0 and "src: Could not find or access 'nope.yml'" in failed.output, failed.output
