"""ipvs_table as a user runs it: real ansible-playbook runs against localhost, inside a lab guest.

    make bench      # runs benchmarks/ipvs_table_bench.py, then this file
    .venv/bin/python -m lab run --mem 3G --timeout 3400 -- .venv/bin/python benchmarks/playbook_bench.py

Knobs: BENCH_SIZES (services, default "1000,5000"; 10 real servers each), BENCH_RUNS (medians
of, default 3), BENCH_VARS=0 skips the (slow) vars-file playbooks.

Every playbook is one fresh ``ansible-playbook`` process (connection local, the collection on
ANSIBLE_COLLECTIONS_PATH), against a network namespace the benchmark creates (``ip netns add``)
and deletes by name. A task's cost is "the playbook with the task minus the same playbook
without it". Measured side by side, in rotation within each run:

  * the peers: ``ipvsadm -R`` of the table, ``ipvsadm-save -n``, one ``ipvsadm -e``, each as a
    bare process and as an ``ansible.builtin.command`` task of the same kind of playbook;
  * ipvs_table with ``src:`` (the table as a JSON file on the controller; a no-op also from YAML and
    ipvsadm-save text): converge from empty, no-op,
    one weight change, no-op with ``return_tables: true`` (the old result size), a weight change
    with ``--diff``;
  * the table as a vars file, YAML and JSON (ansible-core reads a file that parses as JSON with
    the JSON decoder, YAML through its tagging constructor): the playbook that only loads it and
    prints its length, and a no-op with ``config: "{{ table }}"``;
  * a profile of the parts, in-process: vars-file load as ansible-playbook does it (DataLoader:
    YAML, JSON; plain libyaml for scale), templating ``{{ table }}`` (a trusted template, fully
    rendered), argument JSON size, module start-up, reading and
    validating src, dump, plan, apply, result size (default vs return_tables).

Targets (issue #12), checked at every size; the script prints figures and ratios and exits
non-zero if one is missed:
  converge task <= 1.0 x ipvsadm -R; no-op task <= 1.0 x ipvsadm-save -n (the peers as tasks:
  both sides as a user runs them; the bare-process ratios are printed too);
  weight change = 1 op and task <= no-op task + 2 x ipvsadm -e;
  growth from the smallest to the largest size <= 5.5 x the size ratio / 5 for every measurement.
"""

from __future__ import annotations

import json
import os
import statistics
import typing as t
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.collection import ensure_importable  # noqa: E402

COLLECTIONS = ensure_importable()
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,5000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
VARS = os.environ.get("BENCH_VARS", "1") != "0"
REAL_SERVERS = 10
PLAYBOOK_TIMEOUT = 1200
PYTHON = sys.executable


def table(services: int, weight_at: int | None = None) -> list[dict]:
    """services x REAL_SERVERS NAT real servers, as config; ``weight_at``: that service's 4th real server at weight 7."""
    out = []
    for i in range(services):
        out.append({"address": "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256), "port": 80,
                    "scheduler": "wlc",
                    "real_servers": [{"address": "172.16.%d.%d" % (j, 1 + i % 250), "port": 8080, "forwarding": "nat",
                                      "weight": 7 if i == weight_at and j == 3 else 1}
                                     for j in range(REAL_SERVERS)]})
    return out


def env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_PYTHON_INTERPRETER=PYTHON,
                ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_NOCOLOR="true",
                ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_LOCAL_TEMP="/tmp/ansible-local",
                ANSIBLE_REMOTE_TEMP="/tmp/ansible-remote", PYTHONPATH=str(COLLECTIONS))


class Namespace:
    def __init__(self) -> None:
        self.name = "pbench-" + uuid.uuid4().hex[:6]

    def __enter__(self) -> "Namespace":
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=30)
        self.run(["ip", "link", "set", "lo", "up"])
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, timeout=30)

    def run(self, argv: list[str], stdin: str | None = None) -> tuple[float, str]:
        t0 = time.perf_counter()
        proc = subprocess.run(["ip", "netns", "exec", self.name] + argv, input=stdin, capture_output=True, text=True,
                              check=True, timeout=900)
        return time.perf_counter() - t0, proc.stdout


def play(work: Path, name: str, tasks: list[dict], vars_files: list[str] | None = None) -> Path:
    path = work / ("%s.yml" % name)
    doc = {"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}
    if vars_files:
        doc["vars_files"] = vars_files
    path.write_text(json.dumps([doc], indent=1))
    return path


def optional(key: str, run: "t.Callable[[], float]", fig: dict, problems: dict) -> None:
    """A measurement that may fail without ending the benchmark (the vars-file playbooks need a lot of memory)."""
    try:
        fig.setdefault(key, []).append(run())
    except RuntimeError as exc:
        problems[key] = str(exc).splitlines()[0]


def playbook(path: Path, *args: str) -> float:
    cmd = [str(Path(PYTHON).with_name("ansible-playbook")), "-i", "localhost,", str(path)] + list(args)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=PLAYBOOK_TIMEOUT, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s" % (path.name, proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
    return elapsed


def module_json(args: dict, check: bool = False) -> dict:
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)})
    proc = subprocess.run([PYTHON, "-m", "ansible_collections.lvs.ipvs.plugins.modules.ipvs_table"], input=payload,
                          capture_output=True, text=True, env=env(), timeout=900, check=False)
    return json.loads(proc.stdout)


def worker(path: str, weight_path: str) -> None:
    """Inside a namespace holding the table: the module's parts in-process; prints JSON."""
    from ansible_collections.lvs.ipvs.plugins.modules.ipvs_table import load_src
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSAdapter
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import plan

    out = {}
    t0 = time.perf_counter()
    want = load_src(path)
    out["read+validate src (JSON)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    adapter = IPVSAdapter()
    have = adapter.dump()
    out["dump"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert plan(want, have, "overridden") == []
    out["plan (no-op)"] = time.perf_counter() - t0
    ops = plan(load_src(weight_path), have, "overridden")
    t0 = time.perf_counter()
    adapter.apply_batch(ops, have)
    out["apply (1 op)"] = time.perf_counter() - t0
    print(json.dumps(out))


def controller_profile(vars_path: Path, vars_json: Path) -> dict:
    """The vars file loaded and templated as ansible-playbook does it (in-process)."""
    import yaml
    from ansible.module_utils.common.yaml import HAS_LIBYAML
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    out: dict = {"libyaml (C parser) in use by ansible-core": HAS_LIBYAML}
    data = None
    for kind, path in (("YAML", vars_path), ("JSON", vars_json)):
        t0 = time.perf_counter()
        data = DataLoader().load_from_file(str(path), cache="none")
        out["vars file load, ansible-core DataLoader, %s" % kind] = time.perf_counter() - t0
    t0 = time.perf_counter()
    yaml.load(vars_path.read_text(), Loader=yaml.CSafeLoader)  # nosec B506
    out["(YAML load, plain libyaml CSafeLoader, for scale)"] = time.perf_counter() - t0
    # A template string from a playbook is trusted; an untrusted one would come back unrendered.
    t0 = time.perf_counter()
    templated = Templar(loader=DataLoader(), variables=data).template(trust_as_template("{{ table }}"))
    args = json.dumps({"ANSIBLE_MODULE_ARGS": {"config": templated}})
    out["templating config: '{{ table }}' + argument JSON encode"] = time.perf_counter() - t0
    out["argument size (bytes), config"] = len(args)
    return out


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(services: int, work: Path) -> tuple[dict, dict, dict]:
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import render_restore
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_table

    config = table(services)
    import yaml
    # The table file: JSON (YAML and ipvsadm-save text of the same table are measured too).
    src = work / "files" / ("table-%d.json" % services)
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(json.dumps(config))
    src_yaml = work / "files" / ("table-%d.yml" % services)
    src_yaml.write_text(yaml.safe_dump(config, default_flow_style=None, sort_keys=False))
    weight = work / "files" / ("table-%d-weight.json" % services)
    weight.write_text(json.dumps(table(services, weight_at=services // 2)))
    vars_path = work / ("vars-%d.yml" % services)
    vars_path.write_text(yaml.safe_dump({"table": config}, default_flow_style=None, sort_keys=False))
    vars_json = work / ("vars-%d.json" % services)
    vars_json.write_text(json.dumps({"table": config}))
    rules = work / "files" / ("rules-%d.txt" % services)
    rules.write_text(render_restore(normalize_table(config)))
    mid = config[services // 2]
    edit = ["ipvsadm", "-e", "-t", "%s:80" % mid["address"], "-r", "%s:8080" % mid["real_servers"][3]["address"], "-m", "-w"]

    def ipvs(name: str, ns: str, **args: object) -> Path:
        return play(work, "%s-%d" % (name, services), [{"lvs.ipvs.ipvs_table": dict(args, namespace=ns)}])

    def cmd(name: str, ns: str, line: str) -> Path:
        return play(work, "%s-%d" % (name, services), [{"ansible.builtin.command": "ip netns exec %s %s" % (ns, line)}])

    fig: dict[str, list] = {}

    def add(key: str, value: float) -> None:
        fig.setdefault(key, []).append(value)

    empty = play(work, "empty", [])
    base_vars = {kind: play(work, "vars-only-%s-%d" % (kind, services), [{"ansible.builtin.debug": {"msg": "{{ table | length }}"}}],
                            [str(path)]) for kind, path in (("YAML", vars_path), ("JSON", vars_json))}
    base_debug = play(work, "debug", [{"ansible.builtin.debug": {"msg": "1000"}}])
    profile: dict = {}
    for run in range(RUNS):
        add("playbook without task", playbook(empty))
        # Peers, bare and as a task.
        with Namespace() as ns:
            add("bare ipvsadm -R", ns.run(["ipvsadm", "-R"], rules.read_text())[0])
            add("bare ipvsadm-save -n", ns.run(["ipvsadm-save", "-n"])[0])
            add("bare ipvsadm -e", ns.run(edit + ["7"])[0])
            ns.run(edit + ["1"])
            add("task ipvsadm-save -n", playbook(cmd("save", ns.name, "ipvsadm-save -n")))
        with Namespace() as ns:
            restore = [{"ansible.builtin.shell": "ip netns exec %s ipvsadm -R < %s" % (ns.name, rules)}]
            add("task ipvsadm -R", playbook(play(work, "restore-%d" % services, restore)))
        add("playbook without task", playbook(empty))
        # ipvs_table with src.
        with Namespace() as ns:
            add("task converge (src)", playbook(ipvs("converge", ns.name, src=src.name, state="overridden")))
            add("task no-op (src)", playbook(ipvs("noop", ns.name, src=src.name, state="overridden")))
            ops = module_json({"src": str(weight), "state": "overridden", "namespace": ns.name}, check=True)["commands"]
            add("weight change ops", len(ops))
            add("task weight change (src)", playbook(ipvs("weight", ns.name, src=weight.name, state="overridden")))
            add("task weight change (src) --diff", playbook(ipvs("weight-back", ns.name, src=src.name, state="overridden"), "--diff"))
            # A second no-op / weight change pair: the two are compared within 2 x ipvsadm -e.
            add("task no-op (src)", playbook(ipvs("noop", ns.name, src=src.name, state="overridden")))
            add("task weight change (src)", playbook(ipvs("weight", ns.name, src=weight.name, state="overridden")))
            add("task weight change (src)", playbook(ipvs("weight-back-plain", ns.name, src=src.name, state="overridden")))
            add("task no-op (src), return_tables", playbook(ipvs("noop-tables", ns.name, src=src.name, state="overridden", return_tables=True)))
            if run == 0:
                add("task no-op (src YAML)", playbook(ipvs("noop-yaml", ns.name, src=src_yaml.name, state="overridden")))
                add("task no-op (src ipvsadm-save text)", playbook(ipvs("noop-rules", ns.name, src=rules.name, state="overridden")))
                noop = module_json({"src": str(src), "state": "overridden", "namespace": ns.name})
                tables = module_json({"src": str(src), "state": "overridden", "namespace": ns.name, "return_tables": True})
                profile["result size (bytes), no-op default"] = len(json.dumps(noop))
                profile["result size (bytes), no-op return_tables"] = len(json.dumps(tables))
                worker_out = json.loads(ns.run([PYTHON, str(Path(__file__).resolve()), "--worker", str(src), str(weight)])[1])
                profile.update(worker_out)
                for label, path in (("YAML", src_yaml), ("ipvsadm-save text", rules)):
                    t0 = time.perf_counter()
                    subprocess.run([PYTHON, "-c", "import sys; from ansible_collections.lvs.ipvs.plugins.modules.ipvs_table "
                                    "import load_src; load_src(sys.argv[1])", str(path)], env=env(), check=True, timeout=600)
                    profile["read+validate src, %s (process)" % label] = time.perf_counter() - t0
            if VARS and run == 0:
                problems: dict = {}
                add("playbook with one debug task", playbook(base_debug))
                # JSON first: the YAML ones may be killed for memory (a 3 GB guest at 1,000 x 10 was).
                for kind, path in (("JSON", vars_json), ("YAML", vars_path)):
                    optional("playbook loading the %s vars file (prints its length)" % kind,
                             lambda kind=kind: playbook(base_vars[kind]), fig, problems)
                    noop_vars = play(work, "noop-vars-%s-%d" % (kind, services),
                                     [{"lvs.ipvs.ipvs_table": {"config": "{{ table }}", "state": "overridden", "namespace": ns.name}}],
                                     [str(path)])
                    optional("task no-op (config from the %s vars file)" % kind, lambda noop_vars=noop_vars: playbook(noop_vars),
                             fig, problems)
                profile.update({"FAILED: " + k: v for k, v in problems.items()})
        add("playbook without task", playbook(empty))
    for name, code in (("python -c pass", "pass"),
                       ("module imports", "import ansible_collections.lvs.ipvs.plugins.modules.ipvs_table")):
        t0 = time.perf_counter()
        subprocess.run([PYTHON, "-c", code], env=env(), check=True, timeout=120)
        profile["start-up: " + name] = time.perf_counter() - t0
    if VARS:
        profile.update(controller_profile(vars_path, vars_json))
    figures = {k: med(v) for k, v in fig.items()}
    return figures, profile, dict(fig)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) == 3 and sys.argv[1] == "--report":  # print again from a figures.json
        return report(json.loads(Path(sys.argv[2]).read_text()))
    subprocess.run(["modprobe", "ip_vs"], check=True, timeout=60)
    subprocess.run(["modprobe", "ip_vs_wlc"], check=True, timeout=60)
    work = Path(os.environ.get("LVS_LAB_SHARE", "/tmp")) / "playbook-bench"
    work.mkdir(parents=True, exist_ok=True)
    print("ipvs_table playbook benchmark: kernel %s, ansible-playbook (connection local), medians of %d"
          % (os.uname().release, RUNS), flush=True)
    measured = {}
    for services in SIZES:
        started = time.perf_counter()
        figures, profile, raw = measure(services, work)
        measured[services] = {"figures": figures, "profile": profile, "raw": raw, "seconds": time.perf_counter() - started}
        (work / "figures.json").write_text(json.dumps(measured, indent=1))
    return report(measured)


def report(measured: dict) -> int:
    results = {}
    for services, data in sorted(measured.items(), key=lambda kv: int(kv[0])):
        services = int(services)
        figures, profile = data["figures"], data["profile"]
        results[services] = figures
        base = figures["playbook without task"]
        size = "%dx%d" % (services, REAL_SERVERS)
        print("\n%s  (measured in %.0f s)" % (size, data["seconds"]))
        print("  %-52s %9s %9s" % ("playbook / process", "wall (s)", "task (s)"))
        for key, value in list(figures.items()):
            if key == "weight change ops":
                continue
            task = value - base if key.startswith("task") else None
            figures["cost: " + key] = task if task is not None else value
            print("  %-52s %9.2f %9s" % (key, value, "%.2f" % task if task is not None else ""))
        for kind in ("JSON", "YAML"):
            key = "playbook loading the %s vars file (prints its length)" % kind
            if key in figures and "playbook with one debug task" in figures:
                figures["cost: loading the %s vars file" % kind] = figures[key] - figures["playbook with one debug task"]
                print("  %-52s %9s %9.2f" % ("  = loading + templating the %s vars file" % kind, "",
                                             figures["cost: loading the %s vars file" % kind]))
        print("  profile:")
        for key, value in profile.items():
            print("    %-58s %s" % (key, ("%.3f s" % value) if isinstance(value, float) else value))
    missed = []
    print("\nratios (task = playbook with the task minus the playbook without)")
    print("  %-12s %-58s %7s %7s %s" % ("table", "measurement", "ratio", "target", ""))
    for services, f in results.items():
        size = "%dx%d" % (services, REAL_SERVERS)
        checks = [
            ("converge task (src) / ipvsadm -R task", f["cost: task converge (src)"] / f["cost: task ipvsadm -R"], 1.0),
            ("no-op task (src) / ipvsadm-save -n task", f["cost: task no-op (src)"] / f["cost: task ipvsadm-save -n"], 1.0),
            ("weight task / (no-op task + 2 x bare ipvsadm -e)",
             f["cost: task weight change (src)"] / (f["cost: task no-op (src)"] + 2 * f["bare ipvsadm -e"]), 1.0),
        ]
        for label, ratio, target in checks:
            ok = ratio <= target
            print("  %-12s %-58s %7.2f %7.2f %s" % (size, label, ratio, target, "ok" if ok else "MISSED"))
            if not ok:
                missed.append("%s %s %.2f > %.2f" % (size, label, ratio, target))
        ops = f["weight change ops"]
        print("  %-12s %-58s %7d %7d %s" % (size, "weight change: ops", ops, 1, "ok" if ops == 1 else "MISSED"))
        if ops != 1:
            missed.append("%s weight change took %d ops" % (size, ops))
        for label, ours, peer in (("converge task (src) / bare ipvsadm -R", "cost: task converge (src)", "bare ipvsadm -R"),
                                  ("no-op task (src) / bare ipvsadm-save -n", "cost: task no-op (src)", "bare ipvsadm-save -n"),
                                  ("(info) ipvsadm-save -n task / bare", "cost: task ipvsadm-save -n", "bare ipvsadm-save -n")):
            print("  %-12s %-58s %7.2f %7s (info)" % (size, label, f[ours] / f[peer], ""))
    if len(results) > 1:
        small, large = min(results), max(results)
        limit = 5.5 * (large / small) / 5
        print("\ngrowth %d -> %d services (target <= %.1fx)" % (small, large, limit))
        for key in results[small]:
            if not key.startswith("cost: ") or key not in results[large]:
                continue
            low, high = results[small][key], results[large][key]
            if not low or low <= 0:
                continue
            growth = high / low
            ok = growth <= limit
            print("  %-66s %6.2fx %s" % (key[6:], growth, "ok" if ok else "MISSED"))
            if not ok and "bare" not in key and "ipvsadm" not in key:
                missed.append("growth of %s %.2fx > %.1fx" % (key[6:], growth, limit))
    print("\ntargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
