"""ipvs_table's offline states (rendered, parsed) and its input checks: no kernel is touched, so they run on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

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
