"""Hardening against the real kernel (UML lab): failed runs change nothing, concurrent runs
serialize, SIGKILLed runs never empty a served pool, kernel edge cases round-trip.

Counts are printed (run with ``-s`` inside the guest, or read the junit output).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import parse_save, render_restore
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import lenient, normalize_table, take_warnings
from tests.support.collection import ensure_importable
from tests.support.modules import ipvsadm, run_module, saved

pytestmark = pytest.mark.lab

WEB = {"address": "10.0.0.1", "port": 80, "scheduler": "rr",
       "real_servers": [{"address": "10.0.1.1", "forwarding": "nat", "weight": 2}]}
SYSCTL = "net.ipv4.vs.expire_nodest_conn"


def restore(ns, text):
    subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", "-R"], input=text, text=True, check=True, timeout=120)


def state_of(ns):
    """Everything a failed run must leave byte-identical: table, thresholds, timeouts, daemons, one sysctl."""
    sysctl = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-n", SYSCTL], capture_output=True, text=True,
                            timeout=30, check=True).stdout
    return (saved(ns), ipvsadm(ns, "-Ln", "--thresholds"), ipvsadm(ns, "-L", "--timeout"),
            ipvsadm(ns, "-L", "--daemon"), sysctl)


def start_module(name, args):
    """Start lvs.ipvs.<name> as its own process (not waited for); its output goes to a file,
    so that a run holding the lock never blocks on a full pipe."""
    base = ensure_importable()
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False,
                                           _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}
    stdin, stdout = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    stdin.write(json.dumps(payload))
    stdin.seek(0)
    proc = subprocess.Popen([sys.executable, "-m", "ansible_collections.lvs.ipvs.plugins.modules.%s" % name],
                            stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONPATH=str(base)))
    stdin.close()
    proc.out = stdout
    return proc


def finish(proc, timeout=180):
    proc.wait(timeout=timeout)
    proc.out.seek(0)
    text = proc.out.read()
    proc.out.close()
    return json.loads(text)


def test_failed_runs_change_nothing(netns, ipvsadm, tmp_path):  # noqa: F811 (ipvsadm fixture loads ip_vs)
    ns = netns()
    assert run_module("ipvs_table", {"config": [WEB], "namespace": ns})["changed"]
    subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", "--set", "900", "120", "300"], check=True, timeout=30)
    start = state_of(ns)
    rules = tmp_path / "rules"
    rules.write_text("# keep\n")
    other = dict(WEB, address="10.0.0.2", real_servers=[{"address": "10.0.1.2", "forwarding": "nat"}])
    runs = [
        # unwritable target: persist_path in a missing directory
        ("ipvs_table", {"config": [WEB, other], "persist": True, "persist_path": str(tmp_path / "missing" / "rules")},
         "persist_path: directory"),
        # kernel refusal after valid ops (no twos scheduler in this kernel)
        ("ipvs_table", {"config": [other, dict(other, address="10.0.0.3", scheduler="twos")], "state": "overridden"},
         "refused by the kernel"),
        # a bad later option
        ("ipvs_table", {"config": [other, dict(other, address="10.0.0.3", real_servers=[{"address": "10.0.1.3", "drained": "maybe"}])]},
         "drained"),
        ("ipvs_service", {"address": "10.0.0.4", "port": 80, "scheduler": "twos"}, "refused by the kernel"),
        ("ipvs_service", {"address": "10.0.0.4", "port": 80, "scheduler_flags": 5}, "scheduler_flags"),
        ("ipvs_real_server", {"service": {"address": "10.0.0.9", "port": 80}, "address": "10.0.1.9"}, "does not exist"),
        ("ipvs_real_server", {"service": {"address": "10.0.0.1", "port": 80}, "address": "10.0.1.9", "weight": 3,
                              "upper_threshold": 5, "lower_threshold": 9}, "lower_threshold"),
        # valid timeouts, then a sync daemon the kernel refuses: the timeouts are put back
        ("ipvs_config", {"timeouts": {"tcp": 1000, "tcpfin": 60, "udp": 60},
                         "sync_daemons": [{"state": "master", "interface": "nosuchif0", "syncid": 1}]}, "rolled back"),
        ("lvs_sysctl", {"sysctls": {SYSCTL: 1}, "path": str(tmp_path / "missing" / "90.conf")}, "path: directory"),
        ("lvs_sysctl", {"sysctls": {SYSCTL: 1, "net.ipv4.vs.nonexistent_knob": 1}, "path": str(tmp_path / "90.conf")}, "nonexistent_knob"),
        ("ipvs_table", {"config": [WEB], "namespace": "../../proc/1/ns/net"}, "namespace"),
        ("ipvs_table", {"config": [], "state": "overridden", "confirm_flush": True, "namespace": ""}, "namespace"),
    ]
    changed = 0
    for name, args, words in runs:
        args = dict(args)
        args.setdefault("namespace", ns)
        result = run_module(name, args)
        assert result.get("failed"), (name, args, result)
        assert words in result["msg"], (name, result["msg"])
        if state_of(ns) != start or rules.read_text() != "# keep\n" or (tmp_path / "90.conf").exists() \
                or (tmp_path / "missing").exists():
            changed += 1
            pytest.fail("%s %r changed something: %s" % (name, args, result["msg"]))
    print("hardening: %d failed runs, %d changed anything" % (len(runs), changed))
    assert "-A -t 10.0.0.1:80" in saved(ns)


def _big(rip_base, services=2000, servers=10):
    return [{"address": "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256), "port": 80, "scheduler": "wrr",
             "real_servers": [{"address": "172.%d.%d.%d" % (rip_base, (i * servers + j) // 256 % 256, (i * servers + j) % 256),
                               "port": 80, "forwarding": "dr", "weight": 1}
                              for j in range(servers)]}
            for i in range(services)]


def _pools(ns):
    with lenient():
        table = parse_save(saved(ns))
    take_warnings()
    return {(s["address"], s["port"]): len(s["real_servers"]) for s in table}


def test_sigkill_mid_converge_never_empties_a_served_pool(netns):
    ns = netns()
    configs = [_big(16), _big(17)]
    restore(ns, render_restore(normalize_table(configs[0])))
    trials, broken = 10, 0
    rng = random.Random(20261203)
    # One full run to learn how long a converge takes on this (loaded) guest.
    started = time.monotonic()
    full = run_module("ipvs_table", {"config": configs[1], "state": "overridden", "namespace": ns})
    duration = time.monotonic() - started
    assert full["changed"] and not full.get("failed"), full.get("msg")
    current = 1
    killed_mid = 0
    for trial in range(trials):
        target = 1 - current
        before = _pools(ns)
        proc = start_module("ipvs_table", {"config": configs[target], "state": "overridden", "namespace": ns})
        time.sleep(rng.uniform(0.3, 1.0) * duration)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_mid += 1
        proc.wait(timeout=180)
        proc.out.close()
        after = _pools(ns)
        empty = [k for k, n in before.items() if n and after.get(k) == 0]
        if empty:
            broken += 1
        assert not empty, "trial %d: %d served VIPs left with an empty pool, e.g. %s" % (trial, len(empty), empty[:3])
        again = run_module("ipvs_table", {"config": configs[target], "state": "overridden", "namespace": ns})
        assert not again.get("failed"), again.get("msg")
        current = target
    assert run_module("ipvs_table", {"config": configs[current], "state": "overridden", "namespace": ns})["changed"] is False
    print("hardening: %d kill trials (%d killed mid-run, converge %.1f s), %d left an empty pool" % (trials, killed_mid, duration, broken))


def test_concurrent_overridden_runs_end_in_one_of_the_two_configs(netns):
    ns = netns()
    a = _big(20, services=100, servers=4)
    b = [dict(s, scheduler="rr", real_servers=s["real_servers"][:2]) for s in _big(21, services=120, servers=3)]
    wanted = {render_restore(normalize_table(a)), render_restore(normalize_table(b))}
    trials = 10
    for trial in range(trials):
        procs = [start_module("ipvs_table", {"config": cfg, "state": "overridden", "namespace": ns, "return_tables": True})
                 for cfg in ((a, b) if trial % 2 else (b, a))]
        results = [finish(p) for p in procs]
        assert all(not r.get("failed") for r in results), [r.get("msg") for r in results]
        with lenient():
            now = render_restore(parse_save(saved(ns)))
        assert now in wanted, "trial %d: the table is neither config" % trial
        # the run that finished last reports the table as it is
        last = [r for r in results if r.get("after") is not None and render_restore(r["after"]) == now]
        assert last, "trial %d: no run reports the final table as its after" % trial
    print("hardening: %d concurrency trials, all ended in one of the two configs" % trials)


EDGE_LINES = [
    "-A -t 10.0.0.1:80 -s wrr",
    "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 100000",        # weight above 65535
    "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -g -w 1",           # DR real server on another port
    "-A -t 10.0.0.2:0 -s rr",                               # port 0 without persistence
    "-A -t 10.0.0.3:80 -s rr -o",                           # one-packet scheduling on TCP
    "-A -u 10.0.0.4:53 -s rr -p 4000000",                   # persistence above 31 days
    "-A -f 4294967295 -s sh -b sh-port",
    "-A -u [2001:db8::1]:53 -s mh -b mh-fallback,mh-port",
]


def test_kernel_edge_cases_round_trip_both_ways(netns):
    src, dst = netns(), netns()
    accepted = []
    for line in EDGE_LINES:
        proc = subprocess.run(["ip", "netns", "exec", src, "ipvsadm", "-R"], input=line + "\n", text=True,
                              capture_output=True, timeout=30, check=False)
        if proc.returncode == 0:
            accepted.append(line)
        else:
            # ipvsadm refuses it, the kernel holds it: put it there over netlink.
            with lenient():
                svc = parse_save(line + "\n" if line.startswith("-A") else EDGE_LINES[0] + "\n" + line + "\n")
            take_warnings()
            done = run_module("ipvs_table", {"config": svc, "state": "merged", "namespace": src})
            assert not done.get("failed"), (line, done)
    print("hardening: ipvsadm -R accepted %d of %d edge-case lines: refused %s"
          % (len(accepted), len(EDGE_LINES), [ln for ln in EDGE_LINES if ln not in accepted]))
    # gathered -> config: a no-op, whatever the kernel holds
    gathered = run_module("ipvs_table", {"state": "gathered", "namespace": src})["gathered"]
    again = run_module("ipvs_table", {"config": gathered, "state": "overridden", "namespace": src})
    assert not again.get("failed") and again["changed"] is False, again
    # ipvsadm-save -n -> parsed -> rendered -> ipvsadm -R: identical ipvsadm -Sn
    text = subprocess.run(["ip", "netns", "exec", src, "ipvsadm-save", "-n"], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    parsed = run_module("ipvs_table", {"state": "parsed", "running_config": text})
    assert not parsed.get("failed"), parsed
    rendered = run_module("ipvs_table", {"state": "rendered", "config": parsed["parsed"]})["rendered"]
    blocks = []
    for line in rendered.splitlines():
        if line.startswith("-A"):
            blocks.append([])
        blocks[-1].append(line)
    refused = []
    for block in blocks:
        text = "".join(ln + "\n" for ln in block)
        proc = subprocess.run(["ip", "netns", "exec", dst, "ipvsadm", "-R"], input=text, text=True,
                              capture_output=True, timeout=30, check=False)
        if proc.returncode != 0:
            # ipvsadm -R refuses what it refused above; the module puts it in over netlink.
            refused.append(block[0])
            with lenient():
                config = parse_save(text)
            take_warnings()
            assert not run_module("ipvs_table", {"config": config, "state": "merged", "namespace": dst}).get("failed")
    print("hardening: round trip of %d services; ipvsadm -R refused %d rendered service lines (%s), restored over netlink"
          % (len(blocks), len(refused), refused))
    assert len(refused) == len(EDGE_LINES) - len(accepted)
    assert saved(dst) == saved(src)
    # parsed accepts -a then -e of the same server (valid restore text), as ipvsadm -R does
    edit = "-A -t 10.0.9.1:80 -s rr\n-a -t 10.0.9.1:80 -r 10.0.9.2:80 -m -w 1\n-e -t 10.0.9.1:80 -r 10.0.9.2:80 -m -w 7\n"
    third = netns()
    restore(third, edit)
    parsed = run_module("ipvs_table", {"state": "parsed", "running_config": edit})
    assert not parsed.get("failed"), parsed
    assert run_module("ipvs_table", {"config": parsed["parsed"], "state": "overridden", "namespace": third})["changed"] is False
    # and refuses what ipvsadm refuses
    for bad in ("-A -t 10.0.9.5:80 -u 10.0.9.5:80 -s rr\n", "-A -t 10.0.9.5:80 -s rr\n-A -t 10.0.9.5:80 -s rr\n"):
        proc = subprocess.run(["ip", "netns", "exec", third, "ipvsadm", "-R"], input=bad, text=True,
                              capture_output=True, timeout=30, check=False)
        assert proc.returncode != 0, bad
        assert run_module("ipvs_table", {"state": "parsed", "running_config": bad}).get("failed"), bad
