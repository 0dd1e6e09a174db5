"""A director role run, new role against today's, on the lab kernel (issue #9).

    .venv/bin/python benchmarks/role_bench.py        # on the host: one fresh lab guest per case
    .venv/bin/python -m lab run --timeout 3000 -- .venv/bin/python benchmarks/role_bench.py
                                                     # or every case in one guest, reset in between

Cases (NAT director, eth0 public and eth1 private as dummy interfaces, N services x 10 real
servers, VIPs in 198.18.0.0/15, real servers in 172.16.0.0/12), each a whole
``ansible-playbook`` run against localhost (connection local), from empty and then again (no-op):

  * new:  ``lvs.ipvs.director`` (this tree) at N = 10 and 1,000;
  * old:  ``lvs.ipvs.nat_director`` of commit 5817060 (``git archive`` into a temporary
    ansible_collections/lvs/ipvs tree, the collection of that time, its own filters) at N = 10
    and 30; its 1,000 figures are EXTRAPOLATED: module processes linearly in N from the two
    sizes, seconds linearly in module processes.

Module processes are counted, not estimated: the interpreter Ansible runs every module with is a
wrapper that logs each start (and the module's name) before it execs Python.

Targets: the new role's module processes do not grow with N (same count at every size), and
old(1,000, extrapolated) / new(1,000) >= 20 for the converge and the no-op run. The script
prints the table and exits non-zero if a target is missed or a run fails.

Knobs: BENCH_NEW_SIZES (10,1000), BENCH_OLD_SIZES (10,30), BENCH_REAL_SERVERS (10),
BENCH_RATIO (20), BENCH_OLD_COMMIT (5817060), BENCH_CASE_TIMEOUT (seconds per case, 2400),
BENCH_JSON (a file for the figures). Quick run: BENCH_NEW_SIZES=10,100 BENCH_OLD_SIZES=2,5.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.collection import ensure_importable  # noqa: E402

NEW_SIZES = [int(n) for n in os.environ.get("BENCH_NEW_SIZES", "10,1000").split(",")]
OLD_SIZES = [int(n) for n in os.environ.get("BENCH_OLD_SIZES", "10,30").split(",")]
REAL_SERVERS = int(os.environ.get("BENCH_REAL_SERVERS", "10"))
RATIO = float(os.environ.get("BENCH_RATIO", "20"))
OLD_COMMIT = os.environ.get("BENCH_OLD_COMMIT", "5817060")
CASE_TIMEOUT = float(os.environ.get("BENCH_CASE_TIMEOUT", "2400"))
RUNS = ("converge", "noop")
IN_GUEST = os.environ.get("LVS_LAB_GUEST") == "1"
CMD_TIMEOUT = 60
ROLE_FILES = ("/etc/sysctl.d/90-lvs-director.conf", "/etc/modules-load.d/lvs-director.conf", "/etc/lvs.ipvs",
              "/var/lib/lvs.ipvs", "/etc/systemd/system/lvs-director.service",
              "/etc/systemd/system/multi-user.target.wants/lvs-director.service",
              "/etc/sysctl.d/90-lvs-nat-director.conf", "/etc/modules-load.d/lvs-nat-director.conf",
              "/etc/systemd/system/lvs-nat-director.service",
              "/etc/systemd/system/multi-user.target.wants/lvs-nat-director.service",
              "/etc/ipvsadm.rules", "/etc/default/ipvsadm")


def services(count: int) -> list[dict]:
    """count NAT services x REAL_SERVERS real servers: VIPs 198.18.x.y:80, real servers 172.16.j.k:8080."""
    return [{"address": "198.18.%d.%d" % (i // 250, 1 + i % 250), "port": 80, "scheduler": "wlc",
             "real_servers": [{"address": "172.16.%d.%d" % (j, 1 + i % 250), "port": 8080} for j in range(REAL_SERVERS)]}
            for i in range(count)]


def role_vars(role: str, count: int) -> tuple[str, dict]:
    if role == "new":
        return "lvs.ipvs.director", {"director_forwarding": "nat", "director_manage_packages": False,
                                     "director_interface": "eth0", "director_private_interface": "eth1",
                                     "director_services": services(count)}
    return "lvs.ipvs.nat_director", {"nat_director_manage_packages": False, "nat_director_interface": "eth0",
                                     "nat_director_private_interface": "eth1", "nat_director_services": services(count)}


def run(argv: list[str], timeout: float = CMD_TIMEOUT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)


# ---------------------------------------------------------------------------------------------- guest side
def old_collection(work: Path) -> Path:
    """The collection of OLD_COMMIT as ansible_collections/lvs/ipvs under work; returns the base."""
    dest = work / "old" / "ansible_collections" / "lvs" / "ipvs"
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT], capture_output=True, timeout=CMD_TIMEOUT,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, timeout=CMD_TIMEOUT, check=True)
    return work / "old"


def reset_host() -> None:
    """What a previous case left: the IPVS table, the interfaces (and their VIPs), the roles' files."""
    run(["ipvsadm", "-C"])
    for dev in ("eth0", "eth1"):
        run(["ip", "link", "del", dev])
    for path in ROLE_FILES:
        p = Path(path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def interfaces() -> None:
    for dev, addr in (("eth0", "198.51.100.1/24"), ("eth1", "172.16.255.1/12")):
        for argv in (["ip", "link", "add", dev, "type", "dummy"], ["ip", "address", "add", addr, "dev", dev],
                     ["ip", "link", "set", dev, "up"]):
            res = run(argv)
            if res.returncode:
                raise RuntimeError("%s: %s" % (" ".join(argv), res.stderr.strip()))


def playbook(work: Path, role: str, count: int) -> Path:
    name, variables = role_vars(role, count)
    (work / "vars.json").write_text(json.dumps(variables))
    play = work / "site.yml"
    play.write_text("---\n- name: Director (%s)\n  hosts: localhost\n  connection: local\n  gather_facts: false\n"
                    "  vars_files: [vars.json]\n  roles:\n    - role: %s\n" % (name, name))
    return play


def interpreter(work: Path, log: Path) -> Path:
    """A python that logs every start (the AnsiballZ file names the module) and execs the real one."""
    wrapper = work / "python"
    wrapper.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\nexec %s "$@"\n' % (log, os.path.abspath(sys.executable)))
    wrapper.chmod(0o755)
    return wrapper


def ipvs_counts() -> tuple[int, int]:
    saved = run(["ipvsadm-save", "-n"]).stdout.splitlines()
    return sum(1 for line in saved if line.startswith("-A ")), sum(1 for line in saved if line.startswith("-a "))


def run_case(role: str, count: int) -> dict:
    """One case on this kernel: converge from empty, then the no-op re-run; figures as a dict."""
    if not IN_GUEST:
        raise SystemExit("role_bench: a case runs inside a lab guest only")
    work = Path(tempfile.mkdtemp(prefix="rolebench-"))
    try:
        reset_host()
        interfaces()
        base = ensure_importable() if role == "new" else old_collection(work)
        play = playbook(work, role, count)
        log = work / "procs.log"
        log.touch()
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(base), ANSIBLE_PYTHON_INTERPRETER=str(interpreter(work, log)),
                   ANSIBLE_PIPELINING="false", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_NOCOLOR="true",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="false", ANSIBLE_RETRY_FILES_ENABLED="false",
                   ANSIBLE_LOCAL_TEMP=str(work / "local"), ANSIBLE_REMOTE_TEMP=str(work / "remote"),
                   ANSIBLE_HOME=str(work / "home"))
        out: dict = {"role": role, "n": count, "m": REAL_SERVERS, "kernel": os.uname().release, "runs": {}}
        for label in RUNS:
            seen = len(log.read_text().splitlines())
            t0 = time.perf_counter()
            try:
                proc = run([str(Path(os.path.abspath(sys.executable)).with_name("ansible-playbook")), "-i", "localhost,", str(play)],
                           timeout=CASE_TIMEOUT, env=env, cwd=str(work))
                rc, output = proc.returncode, proc.stdout + proc.stderr
            except subprocess.TimeoutExpired as exc:
                rc, output = 124, "ansible-playbook timed out after %.0f s\n%s" % (CASE_TIMEOUT, exc.stdout or "")
            seconds = time.perf_counter() - t0
            starts = log.read_text().splitlines()[seen:]
            modules = Counter(m.group(1) if m else "?" for m in (re.search(r"AnsiballZ_(\w+)\.py", s) for s in starts))
            recap = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", output)
            svc, dests = ipvs_counts()
            out["runs"][label] = {"rc": rc, "seconds": seconds, "procs": len(starts), "modules": dict(modules),
                                  "recap": dict(zip(("ok", "changed", "unreachable", "failed", "skipped"),
                                                    map(int, recap.groups()))) if recap else None,
                                  "ipvs": [svc, dests], "tail": "" if rc == 0 else output[-6000:]}
            if rc != 0:
                break
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- host side
def cases() -> list[tuple[str, int]]:
    return [("new", n) for n in NEW_SIZES] + [("old", n) for n in OLD_SIZES]


def run_in_fresh_guest(role: str, count: int) -> dict:
    from lab.uml import STATE_DIR, run_in_guest

    STATE_DIR.mkdir(exist_ok=True)
    share = Path(tempfile.mkdtemp(prefix="rolebench-", dir=STATE_DIR))
    try:
        res = run_in_guest([sys.executable, str(Path(__file__).resolve()), "--case", role, str(count)],
                           timeout=CASE_TIMEOUT * len(RUNS) + 120, share_dir=share, cwd=ROOT)
        result = share / "case.json"
        if res.ok and result.exists():
            return json.loads(result.read_text())
        return {"role": role, "n": count, "m": REAL_SERVERS, "error": res.error() or "rc %d" % res.rc,
                "output": res.output[-6000:], "runs": {}}
    finally:
        shutil.rmtree(share, ignore_errors=True)


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line y = a + b*x."""
    n = len(points)
    mx = sum(x for x, y in points) / n
    my = sum(y for x, y in points) / n
    sxx = sum((x - mx) ** 2 for x, y in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


# The old role by description: its name is kept out of the docs, which show this output.
OLD_NAME = "old NAT director role@" + OLD_COMMIT


def report(results: list[dict]) -> int:
    missed = []
    kernel = next((r["kernel"] for r in results if r.get("kernel")), "?")
    print("director role run (NAT), lab kernel %s, N services x %d real servers, whole ansible-playbook wall time, "
          "module processes counted" % (kernel, REAL_SERVERS))
    print("%-34s %6s %-9s %10s %9s   %s" % ("case", "N", "run", "processes", "seconds", "modules (processes)"))
    rows: dict[tuple[str, int, str], dict] = {}
    for res in results:
        name = "new lvs.ipvs.director" if res["role"] == "new" else OLD_NAME
        if res.get("error"):
            missed.append("%s N=%d: %s" % (name, res["n"], res["error"]))
            print("%-34s %6d FAILED: %s\n%s" % (name, res["n"], res["error"], res.get("output", "")))
            continue
        for label in RUNS:
            r = res["runs"].get(label)
            if r is None:
                continue
            top = ", ".join("%s %d" % kv for kv in Counter(r["modules"]).most_common(4))
            print("%-34s %6d %-9s %10d %9.1f   %s" % (name, res["n"], label, r["procs"], r["seconds"], top))
            want = [res["n"], res["n"] * res["m"]]
            if r["rc"] != 0:
                missed.append("%s N=%d %s: rc %d" % (name, res["n"], label, r["rc"]))
                print(r["tail"])
            elif r["ipvs"] != want:
                missed.append("%s N=%d %s: IPVS has %s services/real servers, want %s"
                              % (name, res["n"], label, r["ipvs"], want))
            elif label == "noop" and r["recap"] and r["recap"]["changed"]:
                missed.append("%s N=%d no-op run changed %d" % (name, res["n"], r["recap"]["changed"]))
            else:
                rows[(res["role"], res["n"], label)] = r
    big = max(NEW_SIZES)
    old_sizes = sorted(n for n in OLD_SIZES if all((("old", n, lb) in rows) for lb in RUNS))
    for label in RUNS:
        new_procs = {n: rows[("new", n, label)]["procs"] for n in NEW_SIZES if ("new", n, label) in rows}
        if len(set(new_procs.values())) > 1:
            missed.append("new role %s: module processes grow with N: %s" % (label, new_procs))
        if len(old_sizes) < 2 or ("new", big, label) not in rows:
            missed.append("%s: cannot compare (need the new role at N=%d and the old one at 2 sizes)" % (label, big))
            continue
        p0, p1 = fit([(n, rows[("old", n, label)]["procs"]) for n in old_sizes])
        s0, s1 = fit([(rows[("old", n, label)]["procs"], rows[("old", n, label)]["seconds"]) for n in old_sizes])
        procs = p0 + p1 * big
        secs = s0 + s1 * procs
        new = rows[("new", big, label)]
        ratio = secs / new["seconds"]
        sizes = ",".join(map(str, old_sizes))
        print("%-34s %6d %-9s %10.0f %9.1f   EXTRAPOLATED from N=%s" % (OLD_NAME, big, label, procs, secs, sizes))
        print("%52s fit: processes = %.1f + %.2f*N; seconds = %.2f + %.4f*processes" % ("", p0, p1, s0, s1))
        print("%52s ratio old(%d, extrapolated)/new(%d): %.1fx in seconds (target >= %gx), %.0fx in processes"
              % ("", big, big, ratio, RATIO, procs / new["procs"]))
        if ratio < RATIO:
            missed.append("%s ratio %.1f < %g" % (label, ratio, RATIO))
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        out = run_case(sys.argv[2], int(sys.argv[3]))
        share = Path(os.environ.get("LVS_LAB_SHARE", "/tmp"))
        (share / "case.json").write_text(json.dumps(out))
        return 0
    ensure_importable()
    results = []
    for role, count in cases():
        t0 = time.perf_counter()
        res = run_case(role, count) if IN_GUEST else run_in_fresh_guest(role, count)
        runs = ", ".join("%s %d processes %.1f s rc %d" % (k, v["procs"], v["seconds"], v["rc"]) for k, v in res["runs"].items())
        print("# %s N=%d done in %.0f s: %s" % (role, count, time.perf_counter() - t0, runs or res.get("error")), flush=True)
        for label, r in res["runs"].items():
            if r["rc"]:
                print("# %s N=%d %s failed, the end of its output:\n%s" % (role, count, label, r["tail"][-3000:]), flush=True)
        results.append(res)
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(results, indent=1))
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
