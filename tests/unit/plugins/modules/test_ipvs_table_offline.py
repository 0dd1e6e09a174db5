"""ipvs_table's offline states (rendered, parsed) and its input checks: no kernel is touched, so they run on the host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.modules import run_module

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def test_rendered_gives_restore_text_with_thresholds():
    config = [{"address": "10.0.0.1", "port": 80, "scheduler": "rr",
               "real_servers": [{"address": "10.0.1.1", "forwarding": "nat", "weight": 3, "upper_threshold": 50},
                                {"address": "10.0.1.2", "forwarding": "nat", "drained": True}]}]
    result = run_module("ipvs_table", {"config": config, "state": "rendered"})
    assert result["changed"] is False
    assert result["rendered"] == ("-A -t 10.0.0.1:80 -s rr\n"
                                  "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3 -x 50\n"
                                  "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0\n")


def test_parsed_then_rendered_is_the_golden_text_again():
    text = (GOLDEN / "tunnels.save").read_text()
    parsed = run_module("ipvs_table", {"state": "parsed", "running_config": text})["parsed"]
    rendered = run_module("ipvs_table", {"config": parsed, "state": "rendered"})["rendered"]
    assert rendered == text


@pytest.mark.parametrize("args, message", [
    ({"state": "parsed", "running_config": "-A -t 10.0.0.1:80 -s nope\n"},
     "running_config[0].scheduler: 'nope' is not one of"),
    ({"state": "rendered", "config": [{"address": "10.0.0.1", "port": 80, "real_servers": [{"address": "10.0.1.1", "weight": -2}]}]},
     "config[0].real_servers[0].weight: -2 is out of range 0.."),
    ({"state": "rendered", "config": [{"address": "10.0.0.1", "port": 80}, {"address": "10.0.0.1", "port": 80}]},
     "config[1]: service tcp 10.0.0.1:80 is also config[0]"),
    ({"state": "parsed"}, "state is parsed but all of the following are missing: running_config"),
])
def test_bad_input_names_the_field(args, message):
    result = run_module("ipvs_table", args)
    assert result.get("failed") and message in result["msg"], result


TABLE = [{"address": "10.0.0.1", "port": 80, "scheduler": "rr",
          "real_servers": [{"address": "10.0.1.1", "forwarding": "nat", "weight": 3, "upper_threshold": 50},
                           {"address": "10.0.1.2", "forwarding": "nat", "drained": True}]}]
RENDERED = ("-A -t 10.0.0.1:80 -s rr\n"
            "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 3 -x 50\n"
            "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 0\n")


@pytest.mark.parametrize("name, content, fmt", [
    ("table.json", json.dumps(TABLE), "auto"),
    ("table.yml", yaml.safe_dump(TABLE), "auto"),
    ("vars.yaml", yaml.safe_dump({"lvs_table": TABLE}), "auto"),
    ("table", json.dumps({"lvs_table": TABLE}), "auto"),
    ("table", yaml.safe_dump(TABLE), "auto"),
    ("table.txt", "# saved\n" + RENDERED, "auto"),
    ("table.rules", RENDERED, "ipvsadm"),
    ("table.data", yaml.safe_dump(TABLE), "yaml"),
])
def test_src_file_in_every_format_gives_the_same_table(tmp_path, name, content, fmt):
    path = tmp_path / name
    path.write_text(content)
    result = run_module("ipvs_table", {"src": str(path), "src_format": fmt, "state": "rendered"})
    assert result.get("rendered") == RENDERED, result


@pytest.mark.parametrize("content, message", [
    ("[{address: 10.0.0.1, port: 80, real_servers: [{address: 10.0.1.1, weight: -2}]}]",
     "src[0].real_servers[0].weight: -2 is out of range 0.."),
    ("{a: [], b: []}", "src: a mapping must have exactly one key, whose value is the list of services (it has keys a, b)"),
    ("just a string", "src: must hold a list of services (it holds str)"),
    ("[{address: 10.0.0.1, port: 80", "src: not valid YAML"),
    ("-A -t 10.0.0.1:80 -s nope\n", "src[0].scheduler: 'nope' is not one of"),
])
def test_bad_src_names_the_field(tmp_path, content, message):
    path = tmp_path / "table"
    path.write_text(content)
    result = run_module("ipvs_table", {"src": str(path), "state": "rendered"})
    assert result.get("failed") and message in result["msg"], result


def test_src_missing_and_src_with_config_are_refused(tmp_path):
    result = run_module("ipvs_table", {"src": str(tmp_path / "nope.yml"), "state": "rendered"})
    assert result.get("failed") and result["msg"].startswith("src: cannot read %s" % (tmp_path / "nope.yml")), result
    result = run_module("ipvs_table", {"src": str(tmp_path / "nope.yml"), "config": TABLE, "state": "rendered"})
    assert result.get("failed") and "mutually exclusive: config|src" in result["msg"], result


def test_real_servers_alike_but_for_the_address_are_each_checked_and_warned_about():
    """Validation is shared between real servers that differ by address only: same result, errors and warnings."""
    base = {"address": "10.0.0.1", "port": 80}
    rs = [{"address": "10.0.1.%d" % i, "forwarding": "nat", "weight": 70000} for i in (1, 2)]
    result = run_module("ipvs_table", {"config": [dict(base, real_servers=rs)], "state": "rendered"})
    assert result["rendered"].count("-w 70000") == 2
    assert [w["event"]["msg"] for w in result["warnings"]] == [
        "config[0].real_servers[%d].weight: 70000 is above the documented maximum 65535; the kernel keeps it" % i for i in (0, 1)]
    for bad, message in ((True, "True is not an integer"), (1.0, "1.0 is not an integer")):
        servers = [{"address": "10.0.1.1", "weight": 1}, {"address": "10.0.1.2", "weight": bad}]
        result = run_module("ipvs_table", {"config": [dict(base, real_servers=servers)], "state": "rendered"})
        assert result.get("failed") and result["msg"] == "config[0].real_servers[1].weight: %s" % message, result
    servers = [{"address": "10.0.1.1"}, {"address": "2001:db8::1"}]
    result = run_module("ipvs_table", {"config": [dict(base, real_servers=servers)], "state": "rendered"})
    assert result.get("failed") and result["msg"].startswith("config[0].real_servers[1].address: 2001:db8::1 is ipv6"), result
    servers = [{"address": "10.0.1.1"}, {"address": "10.0.1.1.5"}]
    result = run_module("ipvs_table", {"config": [dict(base, real_servers=servers)], "state": "rendered"})
    assert result.get("failed") and result["msg"] == "config[0].real_servers[1].address: '10.0.1.1.5' is not an IPv4 or IPv6 address"


def test_plain_ipvsadm_lines_split_like_shlex():
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save
    text = "-A -t 10.0.0.1:80 -s rr\n-a  -t\t10.0.0.1:80 -r 10.0.1.1:80 -m -w 2 # no comment\n"
    with pytest.raises(Exception, match="unknown ipvsadm option '#'"):
        parse_save(text)
    assert parse_save("-A -t 10.0.0.1:80 -s 'rr'\n") == parse_save("-A -t 10.0.0.1:80 -s rr\n")
