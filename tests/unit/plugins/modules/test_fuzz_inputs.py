"""Hostile and careless input for every module and for ``parsed`` text: never a traceback.

Our own seeded generator (no hypothesis: setup stays unchanged), bounded in count and time.
Each module runs in this process as Ansible would run it (arguments through
``basic._ANSIBLE_ARGS``), always in check mode and with a namespace that does not exist,
so nothing on the host can change: a run that gets past validation stops at ``namespace``.
Every run must end in exit_json/fail_json; every failure must name a field (an option
name, ``config[...]``, or ``running_config line N``).

Set LVS_FUZZ_SEED / LVS_FUZZ_COUNT to explore further; the totals are printed (``-s``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import random
import re
import time
import typing as t

import pytest

from tests.support.collection import ensure_importable

ensure_importable()

from ansible.module_utils import basic  # noqa: E402

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_model as model  # noqa: E402
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save  # noqa: E402
from ansible_collections.lvs.ipvs.plugins.module_utils._netns import netns_path  # noqa: E402

SEED = int(os.environ.get("LVS_FUZZ_SEED", "20261203"))
COUNT = int(os.environ.get("LVS_FUZZ_COUNT", "400"))  # per module
TIME_BUDGET = 25.0  # seconds per module, whatever COUNT says
NO_NS = "lvs-fuzz-no-such-namespace"

HOSTILE: list[t.Any] = [
    None, "", " ", 0, -1, 1, 2, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 70, -(2 ** 70), 0.5, 1.0, float("inf"),
    True, False, "on", "Yes", "1", "0", "maybe", "off", [1], [], ["sh-port"], {}, {"sh-port": False},
    "²", "٣", "1" * 5000, "x" * 20000, "\x00", "é", "../../proc/1/ns/net", "..", ".", "a/b",
    "10.0.0.1", "10.0.0.1:80", "[::1]", "::", "fe80::1", "255.255.255.255", "0.0.0.0", "224.0.0.1", "1.2.3",
    "10.0.0.256", "24", "/24", "255.255.255.0", "999999999999", "rr", "sh", "nat", "dr", "tunnel", "gue", "gre",
    "tcp", "udp", "sctp", "ipv6", "sip", "sh-port,sh-fallback", "flag-1", "csum", "remcsum", "master", "backup",
    "lo", "eth0", "net.ipv4.vs.conntrack", "net.ipv4.ip_forward", "/etc/sysctl.d/x.conf", "/nonexistent/x.conf",
    [{"address": "10.0.0.1"}], [None], [[]], {"address": 5}, {"a": {"b": {"c": []}}},
]

GOOD_SVC = {"address": "192.0.2.10", "port": 80, "scheduler": "rr", "persistence_timeout": 300,
            "real_servers": [{"address": "192.0.2.11", "forwarding": "nat", "weight": 2},
                             {"address": "192.0.2.12", "forwarding": "tunnel", "tunnel_type": "gue", "tunnel_port": 6080}]}
BASES: dict[str, dict[str, t.Any]] = {
    "ipvs_table": {"state": "merged", "config": [GOOD_SVC, {"fwmark": 7, "scheduler": "sh", "scheduler_flags": ["sh-port"]}],
                   "owned": {"addresses": ["192.0.2.0/24"], "fwmarks": ["1-9"]}, "drain_timeout": 0, "persist": False},
    "ipvs_service": {"address": "192.0.2.10", "port": 80, "protocol": "tcp", "scheduler": "sh",
                     "scheduler_flags": ["sh-port"], "persistence_timeout": 300, "one_packet": False},
    "ipvs_real_server": {"service": {"address": "192.0.2.10", "port": 80}, "address": "192.0.2.11",
                         "forwarding": "nat", "weight": 3, "upper_threshold": 10, "lower_threshold": 5},
    "ipvs_config": {"timeouts": {"tcp": 900, "tcpfin": 120, "udp": 300},
                    "sync_daemons": [{"state": "master", "interface": "eth0", "syncid": 1}]},
    "ipvs_info": {"connections": False},
    "lvs_sysctl": {"sysctls": {"net.ipv4.vs.conntrack": 0, "net.ipv4.ip_forward": 1}, "persist": False},
    "lvs_probe": {"address": "192.0.2.10", "port": 80, "count": 2, "director_stats": False},
}
# Fuzzing these could touch the host despite check mode (modprobe, waits): held at safe values.
PINNED = {"lvs_sysctl": {"modules": []}, "lvs_probe": {"director_stats": False}}

VALID_LINES = [
    "-A -t 10.0.0.1:80 -s wrr -p 300 -M 255.255.255.0",
    "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3 -x 100 -y 10",
    "-A -u [2001:db8::1]:53 -s sh -o -b sh-port",
    "-A -f 4294967295 -s mh -b mh-fallback,mh-port",
    "-a -f -1 -r 10.0.2.1:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum",
    "-E -t 10.0.0.1:80 -s rr",
    "-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5",
    "-A --sctp-service 10.0.0.3:9 -s lc --pe sip -p",
]
TOKENS = ["-A", "-a", "-E", "-e", "-t", "-u", "-f", "-r", "-s", "-p", "-M", "-b", "-w", "-x", "-y", "-o", "-6", "-m", "-g",
          "-i", "--tun-type", "--tun-port", "--tun-csum", "--tun-remcsum", "--tun-nocsum", "--pe", "²", "٣", "1" * 5000,
          "10.0.0.1:80", "[::1]:80", "10.0.0.1:", ":80", "[::1", "999999999999", "-99999999999", "0", "'", '"', "\\",
          "é", "rr", "sh-port", "ipip", "gue", "gre", "0.0.0.0", "4294967296", "-4294967296", "#"]


def _option_names(spec: dict[str, t.Any]) -> set[str]:
    names = set()
    for name, sub in spec.items():
        names.add(name)
        names.update(sub.get("aliases") or [])
        if sub.get("options"):
            names.update(_option_names(sub["options"]))
    return names


class _Captured(Exception):
    pass


def run_inprocess(name: str, args: dict[str, t.Any]) -> tuple[dict[str, t.Any] | None, str | None]:
    """Run module ``name`` in check mode; returns (result JSON, None) or (None, traceback text)."""
    mod = importlib.import_module("ansible_collections.lvs.ipvs.plugins.modules.%s" % name)
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=True, _ansible_diff=True,
                                           _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError):
        return {"skipped": True}, None
    out = io.StringIO()
    old = (basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE)
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = text.encode(), "legacy"
    try:
        with contextlib.redirect_stdout(out):
            mod.main()
    except SystemExit:
        pass
    except BaseException as exc:  # pylint: disable=broad-except
        import traceback
        return None, "%s\n%s" % (exc, traceback.format_exc())
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = old
        model.take_warnings()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    if not lines:
        return None, "no JSON printed: %r" % out.getvalue()[:500]
    return json.loads(lines[-1]), None


def _mutate(rng: random.Random, value: t.Any, depth: int = 0) -> t.Any:
    """Replace one field somewhere inside ``value`` (dicts and lists) with a hostile value."""
    if isinstance(value, dict) and value and depth < 4 and rng.random() < 0.85:
        value = dict(value)
        key = rng.choice(sorted(value))
        if rng.random() < 0.1:
            value[rng.choice(["bogus", "drained", "stats", "fwmark", "port"])] = rng.choice(HOSTILE)
        else:
            value[key] = _mutate(rng, value[key], depth + 1)
        return value
    if isinstance(value, list) and value and depth < 4 and rng.random() < 0.8:
        value = list(value)
        i = rng.randrange(len(value))
        value[i] = _mutate(rng, value[i], depth + 1)
        return value
    return rng.choice(HOSTILE)


def _names_field(msg: str, names: set[str]) -> bool:
    if re.search(r"(running_config|config)(\[\d+\]| line \d+|\b)", msg):
        return True
    return any(re.search(r"(?<![A-Za-z_])%s(?![A-Za-z_])" % re.escape(n), msg) for n in names)


TOTALS: dict[str, int] = {"inputs": 0, "failed": 0, "named": 0, "tracebacks": 0}


@pytest.mark.parametrize("name", sorted(BASES))
def test_module_never_tracebacks_and_names_the_field(name):
    mod = importlib.import_module("ansible_collections.lvs.ipvs.plugins.modules.%s" % name)
    names = _option_names(_argument_spec(mod))
    rng = random.Random("%s-%s" % (SEED, name))
    deadline = time.monotonic() + TIME_BUDGET
    problems = []
    runs = failed = named = passed = 0
    for _trial in range(COUNT):
        if time.monotonic() > deadline:
            break
        args = dict(BASES[name])
        for _n in range(rng.choice((1, 1, 2, 3))):
            if rng.random() < 0.15:
                args[rng.choice(sorted(names))] = rng.choice(HOSTILE)
            else:
                key = rng.choice(sorted(args))
                args[key] = _mutate(rng, args[key])
        args.update(PINNED.get(name, {}))
        args["namespace"] = NO_NS
        if name in ("lvs_probe",):
            args["director_namespace"] = NO_NS
        result, trace = run_inprocess(name, args)
        if result is not None and result.get("skipped"):
            continue
        runs += 1
        if trace:
            problems.append("TRACEBACK for %r:\n%s" % (args, trace[-1500:]))
            continue
        if result.get("failed"):
            failed += 1
            msg = str(result.get("msg", ""))
            if msg.startswith("namespace: network namespace %r not found" % NO_NS):
                passed += 1  # valid input: it got as far as entering the (missing) namespace
            if _names_field(msg, names):
                named += 1
            else:
                problems.append("no field named for %r: %s" % (args, msg[:300]))
            assert len(msg) < 2000, "message too long (%d): %s" % (len(msg), msg[:300])
    for key, value in (("inputs", runs), ("failed", failed), ("named", named), ("tracebacks", sum("TRACEBACK" in p for p in problems))):
        TOTALS[key] += value
    print("fuzz %s: %d inputs, %d errors (%d of them valid input stopped at the missing namespace), %d naming the field, "
          "%d problems" % (name, runs, failed, passed, named, len(problems)))
    assert not problems, "\n\n".join(problems[:5])


def _argument_spec(mod) -> dict[str, t.Any]:
    """The module's argument_spec, captured by running main() with a stub AnsibleModule."""
    captured = {}

    class Stub:
        def __init__(self, argument_spec=None, **_kw):
            captured.update(argument_spec or {})
            raise _Captured()

    real = mod.AnsibleModule
    mod.AnsibleModule = Stub
    try:
        mod.main()
    except _Captured:
        pass
    finally:
        mod.AnsibleModule = real
    return captured


def _garbage_line(rng: random.Random) -> str:
    tokens = rng.choice(VALID_LINES).split()
    for _trial in range(rng.randint(1, 3)):
        what = rng.random()
        if what < 0.35:
            tokens.insert(rng.randrange(len(tokens) + 1), rng.choice(TOKENS))
        elif what < 0.7 and tokens:
            tokens[rng.randrange(len(tokens))] = rng.choice(TOKENS)
        elif tokens:
            del tokens[rng.randrange(len(tokens))]
    return " ".join(tokens)


def test_parsed_text_never_tracebacks_and_names_the_line():
    rng = random.Random("%s-parsed" % SEED)
    deadline = time.monotonic() + TIME_BUDGET
    runs = failed = 0
    problems = []
    for _trial in range(COUNT * 8):
        if time.monotonic() > deadline:
            break
        lines = [VALID_LINES[0], VALID_LINES[1]] + [_garbage_line(rng) for _trial in range(rng.randint(1, 3))]
        rng.shuffle(lines)
        text = "\n".join(lines) + "\n"
        runs += 1
        try:
            with model.lenient():
                parse_save(text)
        except model.IPVSValidationError as exc:
            failed += 1
            if not re.match(r"running_config( line \d+|\[\d+\]|:)", str(exc)):
                problems.append("%r: %s" % (text, exc))
        except Exception as exc:  # pylint: disable=broad-except
            problems.append("TRACEBACK %s: %r on %r" % (type(exc).__name__, exc, text[:500]))
        finally:
            model.take_warnings()
    TOTALS["inputs"] += runs
    TOTALS["failed"] += failed
    TOTALS["named"] += failed - sum("TRACEBACK" not in p for p in problems)
    TOTALS["tracebacks"] += sum("TRACEBACK" in p for p in problems)
    print("fuzz parsed: %d texts, %d refused, %d problems; totals so far %s" % (runs, failed, len(problems), TOTALS))
    assert not problems, "\n".join(problems[:5])


@pytest.mark.parametrize("text, words", [
    ("-A -t 10.0.0.1:80 -u 10.0.0.1:80 -s rr", "more than one service option"),
    ("-A -t 10.0.0.1:80 -s rr -A", "unknown ipvsadm option"),
    ("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -r 10.0.1.2 -m", "more than one real server option"),
    ("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -i --tun-type gue --tun-port 1 --tun-csum --tun-remcsum",
     "more than one tunnel checksum option"),
    ("-A -t 10.0.0.1:80 -s rr -s wrr", "more than one scheduler option"),
    ("-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.1:80 -s rr", "service added twice"),
    ("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m\n-a -t 10.0.0.1:80 -r 10.0.1.1 -m", "added twice"),
    ("-A -t 10.0.0.1:80 -s rr\n-e -t 10.0.0.1:80 -r 10.0.1.1 -m", "edit of a real server not added above it"),
    ("-A -t 10.0.0.1:² -s rr", "is not a number"),
    ("-A -t 10.0.0.1:80 -s rr -p ²", "unknown ipvsadm option"),
    ("-A -t 10.0.0.1:%s -s rr" % ("9" * 5000), "line 1: line is"),
    ("-A -t 10.0.0.1:80 -s rr -p 300 -M 4294967296", "-M"),
])
def test_parsed_refuses_what_ipvsadm_refuses(text, words):
    with pytest.raises(model.IPVSValidationError) as exc:
        with model.lenient():
            parse_save(text)
    assert str(exc.value).startswith("running_config line") and words in str(exc.value), str(exc.value)


def test_parsed_accepts_add_then_edit_and_what_the_kernel_holds():
    text = ("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n"
            "-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 100000\n-E -t 10.0.0.1:80 -s wrr\n"
            "-A -t 10.0.0.2:0 -s rr\n-A -t 10.0.0.3:80 -s rr -o\n-A -u 10.0.0.4:53 -s rr -p 4000000\n"
            "-a -u 10.0.0.4:53 -r 10.0.1.4:5353 -g -w 1\n")
    with model.lenient():
        table = parse_save(text)
    warnings = model.take_warnings()
    assert [s["scheduler"] for s in table] == ["wrr", "rr", "rr", "rr"]
    assert table[0]["real_servers"][0]["weight"] == 100000
    assert len(warnings) == 5, warnings


def test_oversized_input_is_refused_fast():
    started = time.monotonic()
    with pytest.raises(model.IPVSValidationError, match="running_config line 1: line is 1000001 characters"):
        parse_save("-A " + "x" * 999998)
    with pytest.raises(model.IPVSValidationError) as exc:
        model.normalize_table([{"address": "x" * 1000000, "port": 80}])
    assert len(str(exc.value)) < 200
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("raw, field", [
    ({"address": "10.0.0.1", "port": 80, "scheduler_flags": 5}, "scheduler_flags"),
    ({"address": "10.0.0.1", "port": 80, "scheduler_flags": True}, "scheduler_flags"),
    ({"address": "10.0.0.1", "port": 80, "scheduler": "sh", "scheduler_flags": {"sh-port": False}}, "scheduler_flags"),
    ({"address": "10.0.0.1", "port": 80, "one_packet": "maybe"}, "one_packet"),
    ({"address": "10.0.0.1", "port": 80, "one_packet": [1]}, "one_packet"),
    ({"address": "10.0.0.1", "port": 80, "one_packet": 0.5}, "one_packet"),
    ({"address": "10.0.0.1", "port": 80, "real_servers": [{"address": "10.0.0.2", "forwarding": 0}]}, "forwarding"),
    ({"address": "10.0.0.1", "port": 80, "scheduler": 0}, "scheduler"),
    ({"address": "10.0.0.1", "port": 80, "protocol": 6}, "protocol"),
    ({"address": "10.0.0.1", "port": "٨٠"}, "port"),
    ({"address": "10.0.0.1", "port": 80.0}, "port"),
    ({"fwmark": 0}, "fwmark"),
    ({"fwmark": "0"}, "fwmark"),
    ({"address": 167772161, "port": 80}, "address"),
])
def test_strict_types_name_the_field(raw, field):
    with pytest.raises(model.IPVSValidationError) as exc:
        with model.lenient():
            model.normalize_table([raw])
    assert exc.value.field.endswith("." + field) or exc.value.field.split("].")[-1] == field, str(exc.value)


@pytest.mark.parametrize("value, expected", [("on", True), ("Yes", True), ("1", True), ("t", True), (True, True),
                                             ("off", False), ("No", False), ("0", False), ("f", False), (False, False)])
def test_ansible_booleans_are_the_only_booleans(value, expected):
    assert model.parse_bool(value, "drained") is expected


@pytest.mark.parametrize("value", ["maybe", [1], 0.5, 2, "", None, {}])
def test_other_booleans_are_refused(value):
    with pytest.raises(model.IPVSValidationError, match="^drained: "):
        model.parse_bool(value, "drained")


@pytest.mark.parametrize("name", ["", ".", "..", "../../proc/1/ns/net", "a/b", " lb1", "x" * 300, "lb\x001",
                                  "/run/netns/../../proc/1/ns/net", "/run//netns/x", "/run/netns/./x"])
def test_namespace_names_outside_run_netns_are_refused(name):
    with pytest.raises(ValueError):
        netns_path(name)


def test_namespace_plain_names_and_normal_paths_are_taken():
    assert netns_path("lb1") == "/run/netns/lb1"
    assert netns_path("/proc/1234/ns/net") == "/proc/1234/ns/net"


def test_drained_is_strict_in_ipvs_table():
    for value, ok in (("on", True), ("maybe", False), ([1], False), (0.5, False), ("Yes", True)):
        config = [{"address": "10.0.0.1", "port": 80, "real_servers": [{"address": "10.0.1.1", "drained": value}]}]
        result, trace = run_inprocess("ipvs_table", {"state": "rendered", "config": config})
        assert trace is None
        if ok:
            assert "-w 0" in result["rendered"], result
        else:
            assert result["failed"] and result["msg"].startswith("config[0].real_servers[0].drained: "), result
