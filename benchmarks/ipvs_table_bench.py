"""ipvs_table against ipvsadm on the same kernel, side by side (run inside a lab guest).

    make bench      # = python -m lab run -- python benchmarks/ipvs_table_bench.py

For 100, 1,000 and 5,000 services x 10 real servers, in fresh network namespaces, medians of
3 runs, it measures:
  * converge from empty: the collection's dump + plan + batched apply (in-process, and the
    whole ipvs_table module process) vs ``ipvsadm -R`` of the same table (whole process);
  * a no-op run (dump + plan) vs ``ipvsadm-save -n`` alone;
  * one weight change on the full table: operations sent and time;
  * the start-up cost of the module (imports) vs the pyroute2 import it avoids.
Targets (issue #5): converge ratio <= 0.25 at 1,000 x 10 and beyond; no-op ratio <= 1.0;
one change = 1 op. The script prints the figures and exits non-zero if a target is missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.collection import ensure_importable  # noqa: E402

COLLECTIONS = ensure_importable()
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "100,1000,5000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
REAL_SERVERS = 10


def table(services: int) -> list[dict]:
    """services x REAL_SERVERS NAT real servers, as config."""
    out = []
    for i in range(services):
        out.append({"address": "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256), "port": 80,
                    "scheduler": "wlc",
                    "real_servers": [{"address": "172.16.%d.%d" % (j, 1 + i % 250), "port": 8080, "forwarding": "nat"}
                                     for j in range(REAL_SERVERS)]})
    return out


def worker(mode: str, path: str) -> None:
    """Inside a namespace: time one in-process operation; prints JSON."""
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSAdapter
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import plan

    want = normalize_table(json.loads(Path(path).read_text()))
    t0 = time.perf_counter()
    adapter = IPVSAdapter()
    have = adapter.dump()
    t1 = time.perf_counter()
    if mode == "weight":
        want[len(want) // 2]["real_servers"][3]["weight"] = 7
    ops = plan(want, have, "overridden")
    t2 = time.perf_counter()
    adapter.apply_batch(ops, have)
    t3 = time.perf_counter()
    print(json.dumps({"dump": t1 - t0, "plan": t2 - t1, "apply": t3 - t2, "total": t3 - t0, "ops": len(ops),
                      "objects": len(have) + sum(len(s["real_servers"]) for s in have)}))


class Namespace:
    def __init__(self) -> None:
        self.name = "bench-" + uuid.uuid4().hex[:6]

    def __enter__(self) -> "Namespace":
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"])
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[float, str]:
        t0 = time.perf_counter()
        proc = subprocess.run(["ip", "netns", "exec", self.name] + argv, input=stdin, capture_output=True, text=True,
                              check=True, timeout=600)
        return time.perf_counter() - t0, proc.stdout


def module_run(ns: Namespace, args: dict) -> tuple[float, dict]:
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, namespace=ns.name)})
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.lvs.ipvs.plugins.modules.ipvs_table"], input=payload,
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    elapsed = time.perf_counter() - t0
    result = json.loads(proc.stdout)
    assert not result.get("failed"), result.get("msg")
    return elapsed, result


def med(values: list[float]) -> float:
    return statistics.median(values)


def measure(services: int, rules: str, cfg_path: Path) -> dict:
    names = ("ipvsadm_restore", "converge", "converge_module", "save", "noop", "noop_module", "weight", "weight_ops")
    fig: dict[str, list] = {k: [] for k in names}
    worker_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    for _run in range(RUNS):
        with Namespace() as ns:
            fig["ipvsadm_restore"].append(ns.run(["ipvsadm", "-R"], rules)[0])
        with Namespace() as ns:
            out = json.loads(ns.run(worker_cmd + ["converge", str(cfg_path)])[1])
            fig["converge"].append(out["total"])
            fig["save"].append(ns.run(["ipvsadm-save", "-n"])[0])
            noop = json.loads(ns.run(worker_cmd + ["noop", str(cfg_path)])[1])
            assert noop["ops"] == 0, noop
            fig["noop"].append(noop["dump"] + noop["plan"])
            weight = json.loads(ns.run(worker_cmd + ["weight", str(cfg_path)])[1])
            fig["weight"].append(weight["plan"] + weight["apply"])
            fig["weight_ops"].append(weight["ops"])
        with Namespace() as ns:
            config = json.loads(cfg_path.read_text())
            fig["converge_module"].append(module_run(ns, {"config": config, "state": "overridden"})[0])
            elapsed, result = module_run(ns, {"config": config, "state": "overridden"})
            assert result["changed"] is False
            fig["noop_module"].append(elapsed)
    return {k: med(v) for k, v in fig.items()}


def startup() -> dict:
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    out = {}
    for name, code in (("python", "pass"),
                       ("ipvs_table imports", "import ansible_collections.lvs.ipvs.plugins.modules.ipvs_table"),
                       ("pyroute2 import (avoided)", "import pyroute2.ipvs")):
        times = []
        for _run in range(RUNS):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            times.append(time.perf_counter() - t0)
        out[name] = med(times)
    return out


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
        return 0
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import render_restore
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table

    subprocess.run(["modprobe", "ip_vs"], check=True)
    subprocess.run(["modprobe", "ip_vs_wlc"], check=True)
    share = Path(os.environ.get("LVS_LAB_SHARE", "/tmp"))
    print("ipvs_table benchmark: kernel %s, medians of %d, fresh namespace per measurement" % (os.uname().release, RUNS))
    print("%-12s %-34s %10s %10s %7s" % ("table", "measurement", "ours (s)", "peer (s)", "ratio"))
    missed = []
    for services in SIZES:
        config = table(services)
        cfg_path = share / ("bench-%d.json" % services)
        cfg_path.write_text(json.dumps(config))
        rules = render_restore(normalize_table(config))
        f = measure(services, rules, cfg_path)
        size = "%dx%d" % (services, REAL_SERVERS)
        rows = [
            ("converge from empty (in-process)", f["converge"], f["ipvsadm_restore"], "ipvsadm -R"),
            ("converge from empty (module)", f["converge_module"], f["ipvsadm_restore"], "ipvsadm -R"),
            ("no-op dump+plan (in-process)", f["noop"], f["save"], "ipvsadm-save -n"),
            ("no-op (module)", f["noop_module"], f["save"], "ipvsadm-save -n"),
        ]
        for label, ours, peer, _peer_name in rows:
            print("%-12s %-34s %10.3f %10.3f %7.3f" % (size, label, ours, peer, ours / peer))
        weight_row = (size, "one weight change (plan+apply)", f["weight"], "", "", f["weight_ops"])
        print("%-12s %-34s %10.4f %10s %7s   (%d op)" % weight_row)
        if services >= 1000 and f["converge"] / f["ipvsadm_restore"] > 0.25:
            missed.append("%s converge ratio %.3f > 0.25" % (size, f["converge"] / f["ipvsadm_restore"]))
        if f["noop"] / f["save"] > 1.0:
            missed.append("%s no-op ratio %.3f > 1.0" % (size, f["noop"] / f["save"]))
        if f["weight_ops"] != 1:
            missed.append("%s weight change took %d ops" % (size, f["weight_ops"]))
    print("peers: ipvsadm -R and ipvsadm-save -n (whole processes) of the same table, same kernel")
    for name, secs in startup().items():
        print("start-up: %-28s %.3f s" % (name, secs))
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
