"""Boot a throw-away user-mode Linux guest that runs one command.

The guest's root is a copy-on-write overlay on the host's ``/`` (writes land in
a tmpfs inside the guest); the only read-write host directory is the run's
results directory under ``<repo>/.lab/``, mounted at ``/lab/share`` in the
guest.  There is no network device: the guest's traffic never leaves it.

Each guest is pinned to one host CPU and holds that CPU's slot (an abstract unix
socket) for its whole life, so at most one guest per CPU runs at a time, across
all processes on the machine.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping, Sequence

LAB_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAB_DIR.parent
STATE_DIR = REPO_ROOT / ".lab"
RUNS_DIR = STATE_DIR / "runs"
BUILD_DIR = STATE_DIR / "build"
GUEST_SHARE = "/lab/share"
UML_MODULES = Path("/usr/lib/uml/modules")
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "lvs-lab-"
OWNER_FILE = ".lab-owner"
KEEP_FILE = ".lab-keep"
CONSOLE_LIMIT = 1 << 20
DEFAULT_TIMEOUT = 900.0
# Guest environment variables that must not come from the host.
_ENV_DROP = frozenset({"TMPDIR", "TMP", "TEMP", "PWD", "OLDPWD", "SHLVL", "_", "LD_PRELOAD", "LD_LIBRARY_PATH",
                       "LVS_LAB_PDEATHSIG", "PYTEST_CURRENT_TEST", "PYTEST_VERSION", "COLUMNS", "LINES"})
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@:-]*$")


class LabError(RuntimeError):
    """The lab cannot boot a guest here (missing UML, modules, compiler...)."""


@dataclasses.dataclass
class Result:
    """What one guest run produced."""

    rc: int
    output: str
    share_dir: Path
    console: str = ""
    cpu: int = -1
    kernel: str = ""
    timed_out: bool = False
    crashed: bool = False
    cancelled: bool = False
    boot_s: float = 0.0
    job_s: float = 0.0
    total_s: float = 0.0

    @property
    def overhead_s(self) -> float:
        """Wall time of the guest that was not the job itself (boot + power-off)."""
        return max(0.0, self.total_s - self.job_s)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not (self.timed_out or self.crashed or self.cancelled)

    def error(self) -> str:
        """A human explanation when the guest itself failed (not the command)."""
        if self.timed_out:
            return f"lab: guest on CPU {self.cpu} timed out after {self.total_s:.1f} s and was killed"
        if self.cancelled:
            return f"lab: guest on CPU {self.cpu} was killed because the run was cancelled"
        if self.crashed:
            return f"lab: guest on CPU {self.cpu} died before the job finished (no exit code written)"
        return ""

    def console_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console.splitlines()[-lines:])


@dataclasses.dataclass(frozen=True)
class Uml:
    """The user-mode Linux kernel and its module tree."""

    binary: Path
    version: str
    modules: Path


def find_uml() -> Uml:
    """Locate linux.uml and a module tree that has IPVS; raise LabError otherwise."""
    name = os.environ.get("LVS_LAB_UML", "linux.uml")
    found = shutil.which(name)
    if not found:
        raise LabError(f"lab: user-mode Linux not found ({name!r} is not on PATH); "
                       "install the Debian package user-mode-linux (scripts/setup.sh)")
    candidates = sorted(p for p in UML_MODULES.glob("*") if (p / "kernel/net/netfilter/ipvs/ip_vs.ko").is_file())
    if not candidates:
        raise LabError(f"lab: no UML module tree with ip_vs.ko under {UML_MODULES}")
    if not (candidates[-1] / "kernel/fs/overlayfs/overlay.ko").is_file():
        raise LabError(f"lab: {candidates[-1]} has no overlay.ko")
    return Uml(Path(found), candidates[-1].name, candidates[-1])


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def build_shim() -> Path | None:
    """Compile lab/xstate_shim.c once (cached by content hash); None if not needed and no compiler."""
    src = LAB_DIR / "xstate_shim.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = BUILD_DIR / f"xstate_shim-{digest}.so"
    if out.is_file():
        return out
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        big = _cpu_flags() & {"avx512f", "ospke", "amx_tile", "avx10"}
        if big:
            raise LabError("lab: this CPU has a large XSAVE area (" + ", ".join(sorted(big)) + "); UML 6.1 needs "
                           "lab/xstate_shim.c there, and no C compiler was found (install gcc / build-essential)")
        return None
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with _flock(BUILD_DIR / ".build.lock"):
        if out.is_file():
            return out
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        proc = subprocess.run([cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(src), "-ldl"],
                              capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise LabError(f"lab: building {src.name} failed:\n{proc.stderr}")
        tmp.rename(out)
        for old in BUILD_DIR.glob("xstate_shim-*.so"):
            if old != out:
                old.unlink(missing_ok=True)
    return out


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def host_cpus() -> list[int]:
    """CPUs this process may use, in order."""
    return sorted(os.sched_getaffinity(0))


SLOT_PREFIX = "lvs-lab-cpu"


def _try_slot(cpu: int) -> socket.socket | None:
    """Claim CPU ``cpu``: bind an abstract unix socket (machine-wide, released when we die, no file)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(f"\0{SLOT_PREFIX}{cpu}")
    except OSError:
        sock.close()
        return None
    return sock


@contextmanager
def cpu_slot(cpu: int | None, timeout: float, cancel: threading.Event | None = None) -> Iterator[int]:
    """Hold one host CPU (the given one, or any free one) for a guest's lifetime, across all processes."""
    cpus = host_cpus()
    if cpu is not None and cpu not in cpus:
        raise LabError(f"lab: CPU {cpu} is not available here (allowed: {cpus})")
    wanted = [cpu] if cpu is not None else cpus
    deadline = time.monotonic() + timeout
    while True:
        for c in wanted:
            sock = _try_slot(c)
            if sock is not None:
                try:
                    yield c
                finally:
                    sock.close()
                return
        if cancel is not None and cancel.is_set():
            raise LabError("lab: cancelled while waiting for a free CPU")
        if time.monotonic() > deadline:
            raise LabError(f"lab: no free CPU among {wanted} after {timeout:.0f} s (other guests running)")
        time.sleep(0.1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(directory: Path) -> bool:
    try:
        pid = int((directory / OWNER_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return _pid_alive(pid)


def prune_stale(max_age_s: float = 0.0) -> list[Path]:
    """Remove leftovers of runs whose process is gone: results dirs not marked kept, UML temp dirs."""
    removed: list[Path] = []
    now = time.time()
    for base in (RUNS_DIR,):
        if not base.is_dir():
            continue
        for d in base.iterdir():
            if not d.is_dir() or (d / KEEP_FILE).exists() or owner_alive(d):
                continue
            if max_age_s and now - d.stat().st_mtime < max_age_s:
                continue
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    for pid in orphan_guest_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if SHM_DIR.is_dir():
        for d in SHM_DIR.glob(f"{SHM_PREFIX}*"):
            m = re.match(rf"{SHM_PREFIX}(\d+)-", d.name)
            if d.is_dir() and m and not _pid_alive(int(m.group(1))):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed


def orphan_guest_pids() -> list[int]:
    """linux.uml processes this lab started (tagged uml_dir=/dev/shm/lvs-lab-<pid>-...) whose lab process is gone."""
    tag = f"uml_dir={SHM_DIR}/{SHM_PREFIX}"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not args or not args[0].endswith(b"linux.uml"):
            continue
        for arg in args:
            m = re.match(rf"{re.escape(tag)}(\d+)-".encode(), arg)
            if m and not _pid_alive(int(m.group(1))):
                found.append(int(entry.name))
                break
    return found


def new_share_dir(base: Path = RUNS_DIR, name: str | None = None) -> Path:
    """Create a fresh results directory owned by this process."""
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = base / (name or f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    d.mkdir(parents=True, exist_ok=False)
    (d / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return d


def guest_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The job's environment: the host's (minus host-only variables), the venv on PATH, lab markers."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _ENV_DROP}
    venv_bin = os.path.abspath(os.path.dirname(sys.executable))
    path = env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep)
    if venv_bin not in path:
        path.insert(0, venv_bin)
    env["PATH"] = os.pathsep.join(path)
    env["LVS_LAB_GUEST"] = "1"
    env["LVS_LAB_SHARE"] = GUEST_SHARE
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if extra:
        env.update(extra)
    return env


def _job_script(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    assigns = " \\\n    ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()) if "=" not in k and k)
    cmd = " ".join(shlex.quote(a) for a in argv)
    return ("# lab job, generated by lab/uml.py; run by the guest's init\n"
            f"cd {shlex.quote(cwd)} || exit 126\n"
            f"exec /usr/bin/env -i \\\n    {assigns} \\\n    {cmd}\n")


def _check_path(p: Path, what: str) -> None:
    if not _SAFE_PATH.match(str(p)) or "," in str(p):
        raise LabError(f"lab: {what} {str(p)!r} cannot be passed to UML (use a path without spaces or commas)")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def run_in_guest(argv: Sequence[str], *, cpu: int | None = None, timeout: float = DEFAULT_TIMEOUT, mem: str = "1G",
                 share_dir: Path | None = None, cwd: str | Path | None = None, env: Mapping[str, str] | None = None,
                 keep: bool = False, on_output: Callable[[bytes], None] | None = None,
                 slot_timeout: float | None = None, cancel: threading.Event | None = None) -> Result:
    """Boot a fresh guest, run ``argv`` in it (cwd = ``cwd`` or the current directory) and power off.

    ``share_dir`` (host) appears as /lab/share in the guest; by default a new one is
    created under .lab/runs and removed afterwards unless ``keep``.  ``on_output``
    receives the command's stdout+stderr as it is written.  The guest is killed
    (its whole process group) after ``timeout`` seconds, or as soon as ``cancel``
    is set.
    """
    if not argv:
        raise ValueError("run_in_guest: empty command")
    if os.environ.get("LVS_LAB_GUEST") == "1":
        raise LabError("lab: already inside a lab guest; guests do not nest")
    if not re.fullmatch(r"\d+[KMG]?", mem):
        raise ValueError(f"run_in_guest: bad memory size {mem!r}")
    uml = find_uml()
    shim = build_shim()
    prune_stale(max_age_s=60.0)
    ephemeral = share_dir is None
    share = new_share_dir() if share_dir is None else Path(share_dir).resolve()
    if not share.is_relative_to(STATE_DIR.resolve()):
        raise LabError(f"lab: the results directory must be inside {STATE_DIR} (it is the guest's one writable host "
                       f"directory), not {share}")
    share.mkdir(parents=True, exist_ok=True)
    if keep:
        (share / KEEP_FILE).touch()
    _check_path(share, "results directory")
    work_dir = str(Path(cwd).resolve() if cwd is not None else Path.cwd())
    for name in (".lab-rc", ".lab-started", "output.log"):
        (share / name).unlink(missing_ok=True)
    init = share / ".lab-init.sh"
    shutil.copyfile(LAB_DIR / "guest_init.sh", init)
    init.chmod(0o755)
    (share / ".lab-job.sh").write_text(_job_script(argv, work_dir, guest_env(env)))
    (share / "output.log").touch()
    try:
        with cpu_slot(cpu, slot_timeout if slot_timeout is not None else timeout, cancel) as held:
            return _boot(uml, shim, held, timeout, mem, share, on_output, cancel)
    finally:
        if ephemeral and not keep:
            shutil.rmtree(share, ignore_errors=True)


def _boot(uml: Uml, shim: Path | None, cpu: int, timeout: float, mem: str, share: Path,
          on_output: Callable[[bytes], None] | None, cancel: threading.Event | None) -> Result:
    tmp = SHM_DIR / f"{SHM_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(mode=0o700)
    umid = f"lab{os.getpid()}-{tmp.name[-8:]}"
    cmd = ["taskset", "-c", str(cpu), str(uml.binary), f"mem={mem}", "quiet", "loglevel=3",
           "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro", "con=null", "con0=null,fd:1",
           f"umid={umid}", f"uml_dir={tmp}", f"init={share / '.lab-init.sh'}",
           f"LAB_SHARE_HOST={share}", f"LAB_TIMEOUT={int(timeout) + 30}", f"LAB_REPO_HOST={REPO_ROOT}"]
    host_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TMPDIR": str(tmp),
                "LVS_LAB_PDEATHSIG": str(os.getpid())}
    if shim is not None:
        host_env["LD_PRELOAD"] = str(shim)
    console = bytearray()
    out_path = share / "output.log"
    out_chunks: list[bytes] = []
    timed_out = cancelled = False
    t0 = time.monotonic()
    wall0 = time.time()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=host_env, cwd=str(tmp), start_new_session=True)
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        with open(out_path, "rb") as out, selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            eof = False
            deadline = t0 + timeout
            while True:
                now = time.monotonic()
                if now >= deadline:
                    timed_out = True
                    break
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                if eof:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
                else:
                    for _key, _ev in sel.select(timeout=min(0.1, deadline - now)):
                        try:
                            chunk = os.read(fd, 1 << 16)
                        except BlockingIOError:
                            continue
                        if not chunk:
                            eof = True
                            sel.unregister(fd)
                            break
                        console += chunk
                        if len(console) > CONSOLE_LIMIT:
                            del console[:len(console) - CONSOLE_LIMIT]
                _pump(out, out_chunks, on_output)
            _pump(out, out_chunks, on_output)
    finally:
        _kill_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - t0
    rc_text = _read(share / ".lab-rc").strip()
    started = share / ".lab-started"
    kernel = (_read(started).split() or [""])[0]
    boot_s = job_s = 0.0
    try:
        t_start = started.stat().st_mtime
    except OSError:
        t_start = 0.0
    if t_start:
        boot_s = max(0.0, t_start - wall0)
        try:
            t_end = (share / ".lab-rc").stat().st_mtime
        except OSError:  # killed or crashed while the job ran
            t_end = wall0 + total
        job_s = max(0.0, t_end - t_start)
    crashed = not (timed_out or cancelled) and not rc_text.isdigit()
    rc = int(rc_text) if rc_text.isdigit() else (124 if timed_out else 130 if cancelled else 125)
    output = b"".join(out_chunks).decode(errors="replace")
    return Result(rc=rc, output=output, share_dir=share, console=console.decode(errors="replace"), cpu=cpu,
                  kernel=kernel, timed_out=timed_out, crashed=crashed, cancelled=cancelled,
                  boot_s=boot_s, job_s=job_s, total_s=total)


def _pump(out: BinaryIO, chunks: list[bytes], on_output: Callable[[bytes], None] | None) -> None:
    data = out.read()
    if data:
        chunks.append(data)
        if on_output is not None:
            on_output(data)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the guest's process group (pgid == the PID we started) and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    # UML's per-address-space helper processes share the group; make sure none survives.
    for _attempt in range(50):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        except OSError as exc:
            if exc.errno == errno.EPERM:
                break
            raise
        time.sleep(0.02)
    if proc.stdout is not None:
        proc.stdout.close()
