"""ipvsadm codec: golden ipvsadm-save -n output from the lab kernel, parse <-> render, ops -> lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import (
    commands,
    parse_line,
    parse_save,
    render_restore,
    render_save,
)
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import IPVSValidationError, normalize_table
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import plan

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
SAVES = sorted(GOLDEN.glob("*.save"))


def test_golden_files_are_present():
    # Captured from real ipvsadm in the lab (lab/capture_golden.sh); see tests/unit/golden/.
    assert len(SAVES) >= 10
    assert all(p.with_suffix(".cmds").exists() for p in SAVES)


# ipvsadm sorts services with `int r = s1->fwmark - s2->fwmark`: above 2^31 the subtraction
# overflows and qsort gets an inconsistent order, which no sort can reproduce.
OVERFLOWING_ORDER = {"fwmark_max"}


def _blocks(text):
    """A save text as a multiset of service blocks (a service line with its real servers)."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("-A ") and current:
            blocks.append(current)
            current = []
        current.append(line)
    return sorted(blocks + [current] if current else blocks)


@pytest.mark.parametrize("path", SAVES, ids=[p.stem for p in SAVES])
def test_render_reproduces_ipvsadm_save_byte_for_byte(path):
    text = path.read_text()
    rendered = render_save(parse_save(text))
    if path.stem in OVERFLOWING_ORDER:
        assert _blocks(rendered) == _blocks(text)
    else:
        assert rendered == text


def test_fwmarks_above_2_31_read_back_unsigned_and_restore_unsigned():
    table = parse_save((GOLDEN / "fwmark_max.save").read_text())
    assert sorted(s["fwmark"] for s in table) == [2147483647, 2147483648, 4294967295]
    assert "-A -f 4294967295 -s wlc\n" in render_restore(table)
    assert "-A -f -1 -s wlc\n" in render_save(table)


@pytest.mark.parametrize("path", SAVES, ids=[p.stem for p in SAVES])
def test_commands_given_to_ipvsadm_parse_to_what_the_kernel_kept(path):
    """Our reading of the ipvsadm command lines (defaults included) equals what the kernel reported."""
    given = parse_save(path.with_suffix(".cmds").read_text(), "cmds")
    # ipvsadm-save drops thresholds: compare without them.
    for svc in given:
        for rs in svc.get("real_servers", []):
            rs["upper_threshold"] = rs["lower_threshold"] = 0
    assert given == parse_save(path.read_text())


@pytest.mark.parametrize("path", SAVES, ids=[p.stem for p in SAVES])
def test_plan_from_empty_renders_as_restore_input(path):
    table = parse_save(path.read_text())
    lines = commands(plan(table, [], "merged"))
    assert all(line.startswith("ipvsadm -A ") or line.startswith("ipvsadm -a ") for line in lines)
    assert sorted(line[len("ipvsadm "):] for line in lines) == sorted(render_restore(table).splitlines())


def test_thresholds_survive_render_restore_but_not_render_save():
    table = parse_save("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1 -x 10 -y 2\n")
    assert render_save(table) == "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
    assert render_restore(table).endswith("-m -w 1 -x 10 -y 2\n")
    assert parse_save(render_restore(table)) == table


def test_long_options_and_bare_persistent_flag():
    (svc,) = parse_save("--add-service --udp-service [2001:db8::1]:53 --scheduler sh --persistent --ops "
                        "--sched-flags sh-port\n"
                        "--add-server --udp-service [2001:db8::1]:53 --real-server [2001:db8::2] --masquerading --weight 4\n")
    assert (svc["persistence_timeout"], svc["one_packet"], svc["scheduler_flags"]) == (360, True, ["sh-port"])
    assert svc["real_servers"][0]["port"] == 53 and svc["real_servers"][0]["weight"] == 4


def test_op_lines_for_every_action():
    have = normalize_table([{"address": "10.0.0.1", "port": 80, "real_servers": [{"address": "10.0.1.1"}]},
                            {"fwmark": 3, "family": "ipv6"}])
    want = normalize_table([{"address": "10.0.0.1", "port": 80, "scheduler": "rr",
                             "real_servers": [{"address": "10.0.1.2", "forwarding": "tunnel", "tunnel_type": "gue",
                                               "tunnel_port": 6080}]}])
    assert commands(plan(want, have, "overridden")) == [
        "ipvsadm -E -t 10.0.0.1:80 -s rr",
        "ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
        "ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.1:80",
        "ipvsadm -D -f 3 -6",
    ]


@pytest.mark.parametrize("line, words", [
    ("-X -t 10.0.0.1:80", "not an ipvsadm add/edit command"),
    ("-A -t 10.0.0.1:80 -s", "-s needs a value"),
    ("-A -t 10.0.0.1:80 --frobnicate", "unknown ipvsadm option '--frobnicate'"),
    ("-A -t [2001:db8::1:80", "unbalanced brackets"),
    ("-a -t 10.0.0.1:80 -m", "needs -r"),
    ("-A -t 10.0.0.1:http", "port 'http' is not a number"),
])
def test_bad_lines_are_refused_with_the_line_named(line, words):
    with pytest.raises(IPVSValidationError) as exc:
        parse_line(line, "running_config line 3")
    assert str(exc.value).startswith("running_config line 3: ") and words in str(exc.value)


def test_real_server_before_its_service_is_refused():
    with pytest.raises(IPVSValidationError, match="running_config line 1: real server for a service not defined"):
        parse_save("-a -t 10.0.0.1:80 -r 10.0.1.1\n")


def test_semantic_errors_in_text_name_the_service():
    with pytest.raises(IPVSValidationError, match=r"running_config\[0\].scheduler_flags: flag 'mh-port' does not apply"):
        parse_save("-A -t 10.0.0.1:80 -s rr -b mh-port\n")


def test_ipv4_numeric_netmask_is_read_like_inet_aton():
    (svc,) = parse_save("-A -t 10.0.0.1:80 -s rr -p 60 -M 24\n")
    assert svc["persistence_netmask"] == "0.0.0.24"
