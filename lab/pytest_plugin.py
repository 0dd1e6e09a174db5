"""pytest plugin: tests marked ``@pytest.mark.lab`` run inside user-mode Linux guests.

On the host, the plugin groups the selected lab items into jobs (one job per test
file, one per ``@pytest.mark.lab(fresh=True)`` test), runs the jobs on
``--lab-lanes`` lanes (one pinned CPU each, one fresh guest per job running
``python -m pytest -p lab.pytest_plugin <nodeids> --junitxml=/lab/share/junit.xml``)
and reports every item's outcome from the guest's junit XML back into the host
session.  Inside a guest (``LVS_LAB_GUEST=1``) lab tests simply run.
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Generator

import pytest

from lab import uml

NODEID_PROPERTY = "lab_nodeid"
JUNIT_NAME = "junit.xml"
SESSIONS_DIR = uml.STATE_DIR / "pytest"
DURATIONS_FILE = uml.STATE_DIR / "durations.json"
# Durations measured in a CI run, committed: a fresh clone plans its lanes with them (the longest
# jobs first) instead of a guess per test; this checkout's own last run overrides them.
SEED_DURATIONS_FILE = Path(__file__).with_name("durations.json")
MACHINES_GUESS_S = 400.0  # a machines test's weight when no earlier run measured it
KEEP_FAILED_SESSIONS = 3


def in_guest() -> bool:
    """True inside a lab guest."""
    return os.environ.get("LVS_LAB_GUEST") == "1"


def in_machines_job() -> bool:
    """True in the host pytest that runs one ``lab(machines=True)`` test (it drives lab machines)."""
    return os.environ.get("LVS_LAB_MACHINES_JOB") == "1"


def in_job() -> bool:
    return in_guest() or in_machines_job()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab", "real-kernel lab (user-mode Linux guests)")
    group.addoption("--lab-lanes", type=int, default=2, metavar="N",
                    help="guests running at once, one pinned CPU each (default 2)")
    group.addoption("--lab-timeout", type=float, default=uml.DEFAULT_TIMEOUT, metavar="SEC",
                    help="kill a guest job after SEC seconds (default 900)")
    group.addoption("--lab-keep", action="store_true", default=False,
                    help="keep the guests' results directories (.lab/pytest/...) even when all passed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab(fresh=False, machines=False, timeout=None): run this test inside a user-mode Linux guest "
                                       "with IPVS; fresh=True gives the test a guest of its own; machines=True runs it "
                                       "on the host, in a lane of its own: the lab machines it boots run on the lane's CPU (lab/machines.py)")
    if not in_job() and not hasattr(config, "workerinput"):
        config.pluginmanager.register(LabHost(config), "lab-host")


def _is_lab(item: pytest.Item) -> bool:
    return item.get_closest_marker("lab") is not None


def _is_fresh(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("lab")
    return bool(marker and marker.kwargs.get("fresh", False))


def _is_machines(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("lab")
    return bool(marker and marker.kwargs.get("machines", False))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_job():
        for item in items:
            item.user_properties.append((NODEID_PROPERTY, item.nodeid))
        return
    # Host: non-lab tests first, so that they run while the guests boot.
    items[:] = [i for i in items if not _is_lab(i)] + [i for i in items if _is_lab(i)]


@dataclasses.dataclass
class Outcome:
    """What happened to one lab item in its guest."""

    status: str  # passed | failed | error | skipped | xfailed | missing
    message: str = ""
    text: str = ""
    output: str = ""
    duration: float = 0.0


@dataclasses.dataclass
class Job:
    """One guest: a whole test file, or one fresh test."""

    name: str
    nodeids: list[str]
    weight: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: uml.Result | None = None
    error: str = ""
    outcomes: dict[str, Outcome] = dataclasses.field(default_factory=dict)
    executed: int = 0
    skipped: int = 0
    machines: bool = False
    timeout: float | None = None


def parse_junit(path: Path) -> dict[str, Outcome]:
    """Outcomes by nodeid from a guest's junit XML (nodeid recorded as a testcase property)."""
    outcomes: dict[str, Outcome] = {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return outcomes
    for case in root.iter("testcase"):
        nodeid = ""
        for prop in case.iter("property"):
            if prop.get("name") == NODEID_PROPERTY:
                nodeid = prop.get("value", "")
                break
        if not nodeid:
            continue
        out = Outcome(status="passed", duration=float(case.get("time") or 0.0))
        captured = []
        for child in case:
            tag = child.tag
            if tag in ("system-out", "system-err") and (child.text or "").strip():
                captured.append(child.text or "")
            elif tag == "failure":
                out.status, out.message, out.text = "failed", child.get("message", ""), child.text or ""
            elif tag == "error" and out.status != "failed":
                kind = "error" if "on setup" in child.get("message", "") else "teardown"
                out.status, out.message, out.text = kind, child.get("message", ""), child.text or ""
            elif tag == "skipped" and out.status == "passed":
                xfail = child.get("type") == "pytest.xfail"
                out.status, out.message = ("xfailed" if xfail else "skipped"), child.get("message", "")
        out.output = "\n".join(captured)
        outcomes[nodeid] = out
    return outcomes


class LabHost:
    """Host side: run lab items in guests and report their outcomes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.lanes = max(1, int(config.getoption("lab_lanes")))
        self.timeout = float(config.getoption("lab_timeout"))
        self.keep = bool(config.getoption("lab_keep"))
        self.jobs: list[Job] = []
        self.job_of: dict[str, Job] = {}
        self.setup_error = ""
        self.session_dir: Path | None = None
        self.cancel = threading.Event()
        self.threads: list[threading.Thread] = []
        self.started = False
        self.kernel = ""
        self.wall_s = 0.0
        self._t0 = 0.0

    # -- planning -------------------------------------------------------------

    def plan(self, items: list[pytest.Item]) -> None:
        durations = _load_durations()
        by_file: dict[str, list[str]] = {}
        fresh: list[str] = []
        machines: list[tuple[str, float | None]] = []
        for item in items:
            if not _is_lab(item):
                continue
            if _is_machines(item):
                marker = item.get_closest_marker("lab")
                machines.append((item.nodeid, marker.kwargs.get("timeout") if marker else None))
            elif _is_fresh(item):
                fresh.append(item.nodeid)
            else:
                by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item.nodeid)

        def weight(ids: list[str], unknown: float = 1.0) -> float:
            # Known durations from the last run, else ``unknown`` seconds per test; plus a boot.
            return 2.0 + sum(durations.get(n, unknown) for n in ids)

        for path, ids in by_file.items():
            self.jobs.append(Job(_job_name(path), ids, weight(ids)))
        for nodeid in fresh:
            self.jobs.append(Job(_job_name(nodeid), [nodeid], weight([nodeid])))
        for nodeid, limit in machines:
            # A topology's test takes minutes: with no durations yet (a fresh clone) it still starts first.
            self.jobs.append(Job(_job_name(nodeid), [nodeid], weight([nodeid], MACHINES_GUESS_S), machines=True,
                                 timeout=limit))
        self.jobs.sort(key=lambda j: -j.weight)
        for job in self.jobs:
            for n in job.nodeids:
                self.job_of[n] = job

    # -- running --------------------------------------------------------------

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        self._t0 = time.monotonic()
        try:
            uml.find_uml()
            uml.build_shim()
            uml.prune_stale(max_age_s=60.0)
        except uml.LabError as exc:
            self.setup_error = str(exc)
            for job in self.jobs:
                job.error = self.setup_error
                job.done.set()
            return
        _prune_sessions()
        SESSIONS_DIR.mkdir(parents=True, exist_ok=True)
        self.session_dir = uml.new_share_dir(SESSIONS_DIR)
        todo: queue.Queue[Job] = queue.Queue()
        for job in self.jobs:
            todo.put(job)
        cpus = uml.host_cpus()
        for lane in range(min(self.lanes, len(self.jobs))):
            t = threading.Thread(target=self._lane, args=(cpus[lane % len(cpus)], todo), name=f"lab-lane-{lane}",
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _lane(self, cpu: int, todo: queue.Queue[Job]) -> None:
        while not self.cancel.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                if job.machines:
                    self._run_machines_job(job, cpu)
                else:
                    self._run_job(job, cpu)
            except Exception as exc:  # never leave a waiting item hanging
                job.error = f"lab: job {job.name} failed on the host: {exc!r}"
            finally:
                job.done.set()
        while True:  # cancelled: release whatever is left
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            job.error = "lab: run cancelled before this guest started"
            job.done.set()

    def _run_job(self, job: Job, cpu: int | None) -> None:
        assert self.session_dir is not None
        share = self.session_dir / job.name
        share.mkdir(parents=True, exist_ok=True)
        rootdir = str(self.config.rootpath)
        argv = [sys.executable, "-m", "pytest", "-p", "lab.pytest_plugin", "-p", "no:cacheprovider",
                f"--rootdir={rootdir}", "-q", "-rfEs", "--color=no", "-o", "junit_logging=all",
                "-o", "junit_family=xunit2", f"--junitxml={uml.GUEST_SHARE}/{JUNIT_NAME}"]
        if self.config.inipath is not None:
            argv += ["-c", str(self.config.inipath)]
        argv += job.nodeids
        pythonpath = os.pathsep.join(p for p in (str(uml.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        res = uml.run_in_guest(argv, cpu=cpu, timeout=self.timeout, share_dir=share, cwd=rootdir,
                               env={"LVS_LAB_JOB": job.name, "PYTHONPATH": pythonpath}, cancel=self.cancel,
                               slot_timeout=self.timeout * max(1, len(self.jobs)))
        job.result = res
        if res.kernel:
            self.kernel = res.kernel
        job.outcomes = parse_junit(share / JUNIT_NAME)
        job.executed = sum(1 for o in job.outcomes.values() if o.status not in ("skipped", "xfailed"))
        job.skipped = len(job.outcomes) - job.executed
        if res.timed_out or res.crashed or res.cancelled:
            job.error = res.error()

    def _run_machines_job(self, job: Job, cpu: int) -> None:
        """A ``lab(machines=True)`` test: a host pytest of its own, in this lane.

        The lab machines it boots run on the lane's CPU (LVS_LAB_MACHINE_CPUS; their keeper holds
        that CPU's slot), so the other lane goes on with guests or another topology; its pytest
        dies with this one (PR_SET_PDEATHSIG), and the machines' keeper with it.
        """
        assert self.session_dir is not None
        share = self.session_dir / job.name
        share.mkdir(parents=True, exist_ok=True)
        rootdir = str(self.config.rootpath)
        argv = [sys.executable, "-m", "pytest", "-p", "lab.pytest_plugin", "-p", "no:cacheprovider",
                f"--rootdir={rootdir}", "-q", "-rfEs", "--color=no", "-o", "junit_logging=all",
                "-o", "junit_family=xunit2", f"--junitxml={share / JUNIT_NAME}"]
        if self.config.inipath is not None:
            argv += ["-c", str(self.config.inipath)]
        argv += job.nodeids
        env = dict(os.environ, LVS_LAB_MACHINES_JOB="1", LVS_LAB_SHARE=str(share), LVS_LAB_JOB=job.name,
                   LVS_LAB_MACHINE_CPUS=str(cpu),
                   PYTHONPATH=os.pathsep.join(p for p in (str(uml.REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))
        t0 = time.monotonic()
        limit = job.timeout or self.timeout
        with open(share / "output.log", "wb") as log:
            proc = subprocess.Popen(argv, cwd=rootdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            timed_out = cancelled = False
            while proc.poll() is None:
                if self.cancel.is_set():
                    cancelled = True
                elif time.monotonic() - t0 > limit:
                    timed_out = True
                if timed_out or cancelled:
                    proc.terminate()
                    try:
                        proc.wait(timeout=90)  # the test's own teardown stops its machines
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                    break
                time.sleep(0.2)
        total = time.monotonic() - t0
        output = (share / "output.log").read_text(errors="replace")
        job.result = uml.Result(rc=proc.returncode, output=output, share_dir=share, cpu=cpu, timed_out=timed_out,
                                cancelled=cancelled, job_s=total, total_s=total)
        job.outcomes = parse_junit(share / JUNIT_NAME)
        job.executed = sum(1 for o in job.outcomes.values() if o.status not in ("skipped", "xfailed"))
        job.skipped = len(job.outcomes) - job.executed
        if timed_out:
            job.error = f"lab: machines job {job.name} timed out after {total:.0f} s and was stopped"
        elif cancelled:
            job.error = f"lab: machines job {job.name} was stopped because the run was cancelled"

    def stop(self) -> None:
        self.cancel.set()
        for t in self.threads:
            t.join(timeout=60)
        if self.started:
            self.wall_s = time.monotonic() - self._t0

    # -- reporting ------------------------------------------------------------

    def outcome(self, item: pytest.Item) -> tuple[Job, Outcome]:
        job = self.job_of[item.nodeid]
        if not self.started:
            self.start()
        # Bounded: every job ends within its timeout once its lane picks it up.
        limit = sum(j.timeout or self.timeout for j in self.jobs) + self.timeout + 120
        if not job.done.wait(timeout=limit):
            msg = f"lab: no result from the guest after {limit:.0f} s"
            return job, Outcome("failed", message=msg, text=msg)
        if job.error and item.nodeid not in job.outcomes:
            return job, Outcome("failed", message=job.error.splitlines()[0], text=self._job_failure_text(job))
        found = job.outcomes.get(item.nodeid)
        if found is None:
            return job, Outcome("missing", message="lab: this test did not run in its guest",
                                text=self._job_failure_text(job, missing=True))
        return job, found

    def _job_failure_text(self, job: Job, missing: bool = False) -> str:
        lines = []
        res = job.result
        if job.error:
            lines.append(job.error)
        if missing:
            rc = res.rc if res else "?"
            lines.append(f"lab: this test did not run in its guest (guest pytest exit code {rc})")
        if res is not None:
            tail = "\n".join(res.output.splitlines()[-80:])
            lines.append(f"--- guest job output (tail), job {job.name} on CPU {res.cpu} ---\n{tail}")
            if res.timed_out or res.crashed or res.console.strip():
                lines.append(f"--- guest console (tail) ---\n{res.console_tail()}")
            lines.append(f"(results directory: {res.share_dir})")
        return "\n".join(lines)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if session.config.option.collectonly:
            return
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return  # pytest is about to stop for collection errors: boot nothing
        self.plan(session.items)
        if self.jobs:
            self.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if not _is_lab(item):
            return None
        if item.nodeid not in self.job_of:  # not seen by the planner: a guest of its own, right now
            self.start()
            job = Job(_job_name(item.nodeid), [item.nodeid], 0.0)
            self.jobs.append(job)
            self.job_of[item.nodeid] = job
            try:
                if self.setup_error:
                    job.error = self.setup_error
                else:
                    self._run_job(job, None)
            except Exception as exc:  # reported as the item's failure
                job.error = f"lab: job {job.name} failed on the host: {exc!r}"
            finally:
                job.done.set()
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        t0 = time.time()
        job, out = self.outcome(item)
        for report in _reports(item, job, out, t0):
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.stop()
        failed = any(j.error or any(o.status in ("failed", "error", "teardown") for o in j.outcomes.values())
                     or len(j.outcomes) < len(j.nodeids)
                     for j in self.jobs if j.result is not None and not j.result.cancelled)
        _save_durations(self.jobs)
        if self.session_dir is not None:
            if failed or self.keep:
                (self.session_dir / uml.KEEP_FILE).touch()
            else:
                shutil.rmtree(self.session_dir, ignore_errors=True)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.jobs:
            return
        if self.setup_error:
            terminalreporter.write_line(f"lab: no guest started: {self.setup_error}", red=True)
            return
        machines = [j for j in self.jobs if j.machines]
        ran = [j for j in self.jobs if j.result is not None and not j.result.cancelled and not j.machines]
        executed = sum(j.executed for j in self.jobs if not j.machines)
        skipped = sum(j.skipped for j in self.jobs)
        overhead = sum(j.result.overhead_s for j in ran if j.result is not None)
        lanes = min(self.lanes, len(self.jobs))
        line = (f"lab: {executed} tests ran inside UML guests in {len(ran)} guest boot{_s(len(ran))} over {lanes} lane{_s(lanes)} "
                f"(ipvs kernel {self.kernel or '?'}), {overhead:.1f} s boot overhead, {self.wall_s:.1f} s wall")
        if skipped:
            line += f", {skipped} skipped in guests"
        if ran or not machines:
            terminalreporter.write_line(line)
        if machines:
            terminalreporter.write_line(
                f"lab: {sum(j.executed for j in machines)} tests ran against lab machines (one UML guest per host, "
                f"systemd, ssh), {sum(j.result.total_s for j in machines if j.result is not None):.1f} s")
        if self.session_dir is not None and self.session_dir.exists():
            terminalreporter.write_line(f"lab: guest results kept in {self.session_dir}")


def _die_with_parent() -> None:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _reports(item: pytest.Item, job: Job, out: Outcome, t0: float) -> list[pytest.TestReport]:
    keywords = {k: 1 for k in item.keywords}
    now = time.time()
    if job.result is not None:
        sections = [("lab", f"ran in guest job {job.name} on CPU {job.result.cpu}")]
    else:
        sections = [("lab", f"guest job {job.name} never ran")]
    if out.output.strip() and out.status in ("failed", "error", "teardown"):
        sections.append(("Captured output in the guest", out.output))

    def rep(when: str, outcome: str, longrepr: object = None) -> pytest.TestReport:
        return pytest.TestReport(item.nodeid, item.location, keywords, outcome, longrepr, when,  # type: ignore[arg-type]
                                 sections=sections if when == "call" else (),
                                 duration=out.duration if when == "call" else 0.0, start=t0, stop=now)

    path, lineno = str(item.location[0]), (item.location[1] or 0) + 1
    text: object = GuestFailure(out.text or out.message or "(no details from the guest)", out.message, path, lineno)
    if out.status == "passed":
        return [rep("setup", "passed"), rep("call", "passed"), rep("teardown", "passed")]
    if out.status == "skipped":
        return [rep("setup", "skipped", (path, lineno, f"Skipped: {out.message}")), rep("teardown", "passed")]
    if out.status == "xfailed":
        call = rep("call", "skipped", (path, lineno, out.message))
        call.wasxfail = out.message  # type: ignore[attr-defined]
        return [rep("setup", "passed"), call, rep("teardown", "passed")]
    if out.status == "error":
        return [rep("setup", "failed", text), rep("teardown", "passed")]
    if out.status == "teardown":
        return [rep("setup", "passed"), rep("call", "passed"), rep("teardown", "failed", text)]
    return [rep("setup", "passed"), rep("call", "failed", text), rep("teardown", "passed")]


class GuestFailure:
    """A failure text from the guest, shown as is; ``reprcrash.message`` feeds pytest's short summary."""

    def __init__(self, text: str, message: str, path: str, lineno: int) -> None:
        self.text = text
        first = message or next((line.strip() for line in text.splitlines() if line.strip()), "")
        self.reprcrash = types.SimpleNamespace(message=first, path=path, lineno=lineno)

    def toterminal(self, tw: object) -> None:
        for line in self.text.splitlines():
            tw.line(line)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return self.text


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _job_name(key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key.replace("/", "-").replace("::", "--"))
    return safe[-100:].lstrip("-_.") or "job"


def _read_durations(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    try:
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (TypeError, ValueError):
        return {}


def _load_durations() -> dict[str, float]:
    """The committed seed, overridden by this checkout's last runs."""
    return {**_read_durations(SEED_DURATIONS_FILE), **_read_durations(DURATIONS_FILE)}


def _save_durations(jobs: list[Job]) -> None:
    data = _read_durations(DURATIONS_FILE)
    for job in jobs:
        for nodeid, out in job.outcomes.items():
            data[nodeid] = round(out.duration, 3)
    if not data:
        return
    try:
        DURATIONS_FILE.parent.mkdir(parents=True, exist_ok=True)
        tmp = DURATIONS_FILE.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(DURATIONS_FILE)
    except OSError:
        pass


def _prune_sessions() -> None:
    """Drop results of dead sessions: all that passed, and failed ones beyond the newest few."""
    if not SESSIONS_DIR.is_dir():
        return
    dead = [d for d in SESSIONS_DIR.iterdir() if d.is_dir() and not uml.owner_alive(d)]
    kept = sorted((d for d in dead if (d / uml.KEEP_FILE).exists()), key=lambda d: d.stat().st_mtime)
    for d in [d for d in dead if not (d / uml.KEEP_FILE).exists()] + kept[:-KEEP_FAILED_SESSIONS]:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lab_share() -> Generator[Path, None, None]:
    """Inside a guest: the results directory shared with the host (/lab/share)."""
    if not in_job():
        pytest.fail("lab_share is only available inside a lab guest (mark the test with @pytest.mark.lab)")
    yield Path(os.environ.get("LVS_LAB_SHARE", uml.GUEST_SHARE))
