"""ipvs_real_server / ipvs_service as a user runs them, against ipvsadm through ansible.builtin.command
(run inside a lab guest):

    .venv/bin/python -m lab run --timeout 1800 -- .venv/bin/python benchmarks/single_object_bench.py

For each table size (1,000 and 5,000 services x 10 real servers, loaded with ``ipvsadm -R``
into a fresh network namespace), real ``ansible-playbook`` runs (localhost, connection local,
the whole playbook inside the namespace with ``ip netns exec``) measure, side by side:
  * 100 ``lvs.ipvs.ipvs_real_server`` items adding real servers to one service, against 100
    ``ansible.builtin.command: ipvsadm -a ...`` items adding real servers to another;
  * a no-op ``lvs.ipvs.ipvs_service`` task against a ``command: /bin/true`` task.
The 100 items of each kind run as interleaved loops (``BENCH_CHUNKS``, default 10 loops of 10
each, alternating), and the no-op pair ``BENCH_NOOPS`` times (default 10) alternating, so that
other work on the machine weighs on both sides alike; a callback plugin times each task on the
controller, from its start to its result (the playbook's start-up is not counted), and each
loop item from the previous item's result to its own (their medians are printed too).
Targets (issue 12): real servers <= 1.0 x ipvsadm -a; no-op service <= 1.3 x /bin/true; the
cost of both tasks from 1,000 to 5,000 services grows <= 5.5 x. The script prints the figures
and ratios and exits non-zero on a missed target. BENCH_SIZES (e.g. ``100``), BENCH_ITEMS (e.g.
``10``) and BENCH_RUNS (repeats of the whole measurement per size; medians) make quick or longer runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.ansible import ansible_env  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "1000,5000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "1"))
CHUNKS = int(os.environ.get("BENCH_CHUNKS", "10"))
NOOPS = int(os.environ.get("BENCH_NOOPS", "10"))
ITEMS = int(os.environ.get("BENCH_ITEMS", "100"))
REAL_SERVERS = 10
PLAYBOOK_TIMEOUT = 1500
TARGETS = {"real_server": 1.0, "noop": 1.3, "growth": 5.5}

CALLBACK = '''
from __future__ import annotations
import json, os, time
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    """Appends {"name", "seconds", "status", "changed"} of every task to $BENCH_TIMES."""
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task, self._start = task.get_name(), time.monotonic()
        self._last = self._start

    def _record(self, result, status, item=False):
        now = time.monotonic()
        with open(os.environ["BENCH_TIMES"], "a") as out:
            out.write(json.dumps({"name": self._task, "seconds": now - (self._last if item else self._start),
                                  "item": item, "status": status, "changed": bool(result._result.get("changed")),
                                  "msg": str(result._result.get("msg", ""))[:300]}) + "\\n")
        self._last = now

    def v2_runner_item_on_ok(self, result):
        self._record(result, "ok", item=True)

    def v2_runner_item_on_failed(self, result):
        self._record(result, "failed", item=True)

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")
'''


def vip(i: int) -> str:
    return "10.%d.%d.%d" % (100 + i // 65536, (i // 256) % 256, i % 256)


def rules(services: int) -> str:
    """services x REAL_SERVERS NAT real servers, as ipvsadm -R input."""
    out = []
    for i in range(services):
        out.append("-A -t %s:80 -s wlc" % vip(i))
        out.extend("-a -t %s:80 -r 172.16.%d.%d:8080 -m -w 1" % (vip(i), j, 1 + i % 250) for j in range(REAL_SERVERS))
    return "\n".join(out) + "\n"


def playbook(services: int, run: int) -> list[dict]:
    """The real-server loops (alternating, CHUNKS each) and the no-op pairs (alternating)."""
    ours_vip, theirs_vip = vip(services // 3), vip(2 * services // 3)
    per = ITEMS // CHUNKS
    tasks: list[dict] = []
    for chunk in range(CHUNKS):
        items = ["192.168.%d.%d" % (run * CHUNKS + chunk, n + 1) for n in range(per)]
        tasks.append({"name": "ipvs_real_server", "lvs.ipvs.ipvs_real_server": {
            "service": {"address": ours_vip, "port": 80}, "address": "{{ item }}", "port": 8080, "forwarding": "nat"},
            "loop": items})
        tasks.append({"name": "ipvsadm -a", "ansible.builtin.command": "ipvsadm -a -t %s:80 -r {{ item }}:8080 -m" % theirs_vip,
                      "loop": items})
    for _n in range(NOOPS):
        tasks.append({"name": "ipvs_service no-op", "lvs.ipvs.ipvs_service": {"address": vip(services // 2), "port": 80,
                                                                              "scheduler": "wlc"}})
        tasks.append({"name": "/bin/true", "ansible.builtin.command": "/bin/true"})
    return [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": tasks}]


class Namespace:
    def __init__(self) -> None:
        self.name = "bench-single-" + uuid.uuid4().hex[:6]

    def __enter__(self) -> "Namespace":
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=30)
        self.run(["ip", "link", "set", "lo", "up"])
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, timeout=30)

    def run(self, argv: list[str], stdin: str | None = None, timeout: float = 600) -> str:
        return subprocess.run(["ip", "netns", "exec", self.name] + argv, input=stdin, capture_output=True, text=True,
                              check=True, timeout=timeout).stdout


def measure(services: int, run: int, work: Path) -> dict[str, float]:
    """One playbook run in a fresh namespace holding services x 10; seconds per kind of task."""
    times = work / ("times-%d-%d.jsonl" % (services, run))
    play = work / ("play-%d-%d.json" % (services, run))
    play.write_text(json.dumps(playbook(services, run)))
    env = dict(ansible_env(), ANSIBLE_CALLBACK_PLUGINS=str(work), ANSIBLE_CALLBACKS_ENABLED="bench_timer",
               BENCH_TIMES=str(times))
    with Namespace() as ns:
        ns.run(["ipvsadm", "-R"], rules(services))
        ours_vip, theirs_vip = vip(services // 3), vip(2 * services // 3)
        proc = subprocess.run(["ip", "netns", "exec", ns.name, str(Path(sys.executable).with_name("ansible-playbook")),
                               "-i", "localhost,", str(play)], capture_output=True, text=True, env=env,
                              timeout=PLAYBOOK_TIMEOUT, check=False)
        if proc.returncode != 0:
            raise SystemExit("playbook failed (rc %d):\n%s" % (proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
        listing = ns.run(["ipvsadm", "-Ln"])
        for address in (ours_vip, theirs_vip):
            text = ns.run(["ipvsadm", "-Ln", "-t", "%s:80" % address])
            count = sum(1 for line in text.splitlines() if line.strip().startswith("-> ") and "RemoteAddress" not in line)
            assert count == REAL_SERVERS + ITEMS, (address, count, text)
        assert listing.count("TCP ") == services
    records = [json.loads(line) for line in times.read_text().splitlines()]
    out: dict[str, list[float]] = {}
    for rec in records:
        assert rec["status"] == "ok", rec
        assert rec["changed"] is (rec["name"] != "ipvs_service no-op"), rec
        out.setdefault(rec["name"] + (" item" if rec["item"] else ""), []).append(rec["seconds"])
    assert len(out["ipvs_real_server item"]) == len(out["ipvsadm -a item"]) == ITEMS // CHUNKS * CHUNKS
    return {
        "real_server": sum(out["ipvs_real_server"]),
        "ipvsadm": sum(out["ipvsadm -a"]),
        "real_server_item": statistics.median(out["ipvs_real_server item"]),
        "ipvsadm_item": statistics.median(out["ipvsadm -a item"]),
        "noop": statistics.median(out["ipvs_service no-op"]),
        "true": statistics.median(out["/bin/true"]),
    }


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows in the lab's output.log as it happens
    subprocess.run(["modprobe", "ip_vs"], check=True, timeout=60)
    subprocess.run(["modprobe", "ip_vs_wlc"], check=True, timeout=60)
    print("single-object benchmark: kernel %s, ansible-playbook inside one namespace per table, %d run(s) per size; "
          "%d items as %d interleaved loops, %d alternating no-op pairs" % (os.uname().release, RUNS, ITEMS, CHUNKS, NOOPS))
    figures: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-single-") as tmp:
        work = Path(tmp)
        (work / "bench_timer.py").write_text(CALLBACK)
        for services in SIZES:
            runs = []
            for run in range(RUNS):
                started = time.monotonic()
                runs.append(measure(services, run, work))
                figs = ", ".join("%s %.3f s" % kv for kv in runs[-1].items())
                print("  %d x %d, run %d: %s (%.0f s)" % (services, REAL_SERVERS, run + 1, figs, time.monotonic() - started))
            figures[services] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print("%-10s %-46s %10s %10s %7s" % ("table", "measurement", "ours (s)", "peer (s)", "ratio"))
    missed = []
    for services, f in figures.items():
        size = "%dx%d" % (services, REAL_SERVERS)
        rs_ratio, noop_ratio = f["real_server"] / f["ipvsadm"], f["noop"] / f["true"]
        print("%-10s %-46s %10.2f %10.2f %7.3f" % (size, "%d ipvs_real_server vs %d command: ipvsadm -a" % (ITEMS, ITEMS),
                                                   f["real_server"], f["ipvsadm"], rs_ratio))
        print("%-10s %-46s %10.3f %10.3f %7.3f" % (size, "  median item of those loops", f["real_server_item"],
                                                   f["ipvsadm_item"], f["real_server_item"] / f["ipvsadm_item"]))
        print("%-10s %-46s %10.3f %10.3f %7.3f" % (size, "no-op ipvs_service vs command: /bin/true", f["noop"], f["true"],
                                                   noop_ratio))
        if rs_ratio > TARGETS["real_server"]:
            missed.append("%s real-server ratio %.3f > %.1f" % (size, rs_ratio, TARGETS["real_server"]))
        if noop_ratio > TARGETS["noop"]:
            missed.append("%s no-op ratio %.3f > %.1f" % (size, noop_ratio, TARGETS["noop"]))
    if len(figures) > 1:
        small, large = min(figures), max(figures)
        for key, label in (("real_server", "%d ipvs_real_server" % ITEMS), ("noop", "no-op ipvs_service")):
            growth = figures[large][key] / figures[small][key]
            print("growth %d -> %d services, %-28s %.3f x (target <= %.1f)" % (small, large, label, growth, TARGETS["growth"]))
            if growth > TARGETS["growth"]:
                missed.append("%s growth %.3f > %.1f" % (label, growth, TARGETS["growth"]))
    print("peers: ansible.builtin.command tasks in the same playbooks, same namespace, same kernel; times per task on "
          "the controller (task start to result), playbook start-up excluded")
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    started = time.monotonic()
    rc = main()
    print("benchmark wall time %.0f s" % (time.monotonic() - started))
    sys.exit(rc)
