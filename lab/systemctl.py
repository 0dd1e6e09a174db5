"""A stand-in for ``systemctl`` inside lab hosts, where no systemd runs as PID 1.

Lab hosts (``lab.hosts``) have their own network namespace, /etc, /run and /tmp, but share
the guest's PID 1, which is not systemd.  Roles manage services with ``ansible.builtin.service``,
which on Debian drives ``systemctl``.  This script answers the ``systemctl`` calls Ansible's
systemd module makes (``show``, ``is-active``, ``is-enabled``, ``list-unit-files``, ``start``,
``stop``, ``restart``, ``reload``, ``enable``, ``disable``, ``daemon-reload``) for the real unit
files of the packages (``/lib/systemd/system/*.service``, ``/etc/systemd/system``), so that a
role runs its production code path in the lab:

- ``start`` runs ``ExecStart=`` (with ``EnvironmentFile=`` / ``Environment=`` and ``$VAR`` /
  ``${VAR}`` expansion) in a new session, its output appended to
  ``/run/lab-systemctl/UNIT.log``; ``Type=notify`` waits for ``READY=1`` on ``NOTIFY_SOCKET``,
  or 1 s of the main process running (keepalived notifies only when its parent is systemd);
  ``Type=forking`` waits for ``PIDFile=``; ``ConditionFileNotEmpty=`` is honoured.
- ``reload`` runs ``ExecReload=`` with ``$MAINPID`` (keepalived: ``kill -HUP``).
- ``stop`` sends SIGTERM to the main PID, then SIGKILL to its process group after 15 s.
- ``enable`` / ``disable`` create / remove the ``WantedBy=`` symlinks under
  /etc/systemd/system, as systemctl does.

State lives in the host's own /run (``/run/lab-systemctl``).  A host has it on its PATH
because ``lab.ha.install_systemctl`` bind-mounts this file over /usr/bin/systemctl inside
the host's mount namespace and creates ``/run/systemd/system`` (how Ansible detects systemd).
It only ever signals PIDs it started (recorded in its state directory).
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STATE = Path("/run/lab-systemctl")
UNIT_DIRS = (Path("/etc/systemd/system"), Path("/run/systemd/system"), Path("/lib/systemd/system"),
             Path("/usr/lib/systemd/system"))
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
NOTIFY_GRACE = 1.0


class UnitError(Exception):
    """A unit cannot be handled; the message is what systemctl would print."""


def _unit_name(name: str) -> str:
    return name if "." in name else name + ".service"


def _unit_path(unit: str) -> Path | None:
    for base in UNIT_DIRS:
        path = base / unit
        if path.is_file():
            return path
    return None


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file: {section: {key: [values...]}} (continuation lines joined)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            sections.setdefault(section, {})
            continue
        if "=" in line and section:
            key, value = (p.strip() for p in line.split("=", 1))
            sections[section].setdefault(key, []).append(value)
    return sections


def _environment(service: dict[str, list[str]]) -> dict[str, str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    for item in service.get("Environment", []):
        for word in shlex.split(item):
            if "=" in word:
                key, value = word.split("=", 1)
                env[key] = value
    for item in service.get("EnvironmentFile", []):
        optional = item.startswith("-")
        path = Path(item.lstrip("-"))
        try:
            text = path.read_text()
        except OSError:
            if optional:
                continue
            raise UnitError(f"EnvironmentFile {path} not found") from None
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, value = line.split("=", 1)
            words = shlex.split(value) if value.strip() else [""]
            env[key.strip()] = " ".join(words)
    return env


def expand(command: str, env: dict[str, str]) -> list[str]:
    """systemd's ExecStart= expansion: ``$VAR`` splits into words, ``${VAR}`` stays one word."""
    while command and command[0] in "-@+!:":
        command = command[1:]
    argv: list[str] = []
    for word in shlex.split(command):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return argv


class Unit:
    """One unit: its file, its state in /run/lab-systemctl."""

    def __init__(self, name: str) -> None:
        self.name = _unit_name(name)
        self.path = _unit_path(self.name)
        self.sections = parse_unit(self.path.read_text()) if self.path else {}
        self.service = self.sections.get("Service", {})
        self.pid_file = STATE / f"{self.name}.pid"
        self.log_file = STATE / f"{self.name}.log"

    @property
    def loaded(self) -> bool:
        return self.path is not None

    def _first(self, key: str, default: str = "") -> str:
        values = self.service.get(key) or [default]
        return values[-1]

    @property
    def type(self) -> str:
        return self._first("Type", "simple")

    def main_pid(self) -> int:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0
        return pid if _alive(pid) else 0

    @property
    def active(self) -> bool:
        return self.main_pid() > 0

    def wants_links(self) -> list[Path]:
        targets = []
        for value in self.sections.get("Install", {}).get("WantedBy", []):
            targets.extend(value.split())
        return [Path("/etc/systemd/system") / f"{t}.wants" / self.name for t in targets]

    def enabled_state(self) -> str:
        if not self.loaded:
            return "not-found"
        links = self.wants_links()
        if not links:
            return "static"
        return "enabled" if any(link.is_symlink() or link.exists() for link in links) else "disabled"

    # -- actions --------------------------------------------------------------

    def start(self) -> None:
        if self.active:
            return
        for cond in self.sections.get("Unit", {}).get("ConditionFileNotEmpty", []):
            path = Path(cond.lstrip("!"))
            ok = path.is_file() and path.stat().st_size > 0
            if ok == cond.startswith("!"):
                return  # condition failed: systemd skips the start and reports success
        env = _environment(self.service)
        commands = self.service.get("ExecStart", [])
        if not commands:
            raise UnitError(f"{self.name} has no ExecStart=")
        for pre in self.service.get("ExecStartPre", []):
            res = subprocess.run(expand(pre, env), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=START_TIMEOUT, check=False)
            if res.returncode and not pre.startswith("-"):
                raise UnitError(f"{self.name}: ExecStartPre failed with {res.returncode}")
        argv = expand(commands[-1], env)
        STATE.mkdir(parents=True, exist_ok=True)
        notify = None
        if self.type == "notify":
            notify_path = STATE / f"{self.name}.notify"
            notify_path.unlink(missing_ok=True)
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(str(notify_path))
            env["NOTIFY_SOCKET"] = str(notify_path)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        try:
            if notify is not None:
                self._wait_ready(proc, notify, deadline)
            elif self.type == "forking":
                self._wait_forked(proc, deadline)
            elif self.type == "oneshot":
                rc = proc.wait(timeout=START_TIMEOUT)
                self.pid_file.unlink(missing_ok=True)
                if rc:
                    raise UnitError(f"{self.name}: ExecStart exited with {rc}")
            else:
                time.sleep(0.2)
                if proc.poll() is not None:
                    raise UnitError(f"{self.name}: main process exited with {proc.returncode}")
        finally:
            if notify is not None:
                notify.close()
                Path(env["NOTIFY_SOCKET"]).unlink(missing_ok=True)

    def _wait_ready(self, proc: subprocess.Popen[bytes], sock: socket.socket, deadline: float) -> None:
        # Some daemons notify only when their parent is PID 1 and is systemd (keepalived's
        # check_parent_systemd), which is never the case here: a main process still running after
        # NOTIFY_GRACE seconds counts as started.
        grace = time.monotonic() + NOTIFY_GRACE
        while time.monotonic() < deadline:
            if time.monotonic() > grace and proc.poll() is None:
                return
            if proc.poll() is not None:
                raise UnitError(f"{self.name}: main process exited with {proc.returncode} before READY=1 "
                                f"(see {self.log_file})")
            sock.settimeout(0.2)
            try:
                data = sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            if "MAINPID" in fields and fields["MAINPID"].isdigit():
                self.pid_file.write_text(fields["MAINPID"] + "\n")
            if fields.get("READY") == "1":
                return
        raise UnitError(f"{self.name}: no READY=1 within {START_TIMEOUT:.0f} s")

    def _wait_forked(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        pid_file = self._first("PIDFile")
        rc = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        if rc:
            raise UnitError(f"{self.name}: ExecStart exited with {rc}")
        while time.monotonic() < deadline:
            try:
                pid = int(Path(pid_file).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
                continue
            self.pid_file.write_text(f"{pid}\n")
            return
        raise UnitError(f"{self.name}: PIDFile {pid_file} did not appear")

    def stop(self) -> None:
        pid = self.main_pid()
        if not pid:
            self.pid_file.unlink(missing_ok=True)
            return
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)  # the session it was started in
            except OSError:
                _signal(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def reload(self) -> None:
        pid = self.main_pid()
        if not pid:
            raise UnitError(f"{self.name} is not active, cannot reload.")
        commands = self.service.get("ExecReload", [])
        if not commands:
            raise UnitError(f"Job type reload is not applicable for unit {self.name}.")
        env = dict(_environment(self.service), MAINPID=str(pid))
        for command in commands:
            res = subprocess.run(expand(command, env), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=START_TIMEOUT, check=False)
            if res.returncode and not command.startswith("-"):
                raise UnitError(f"{self.name}: ExecReload failed with {res.returncode}")

    def enable(self, on: bool) -> list[str]:
        out = []
        for link in self.wants_links():
            if on and not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(self.path)
                out.append(f"Created symlink {link} \u2192 {self.path}.")
            elif not on and link.is_symlink():
                link.unlink()
                out.append(f"Removed \"{link}\".")
        return out

    def show(self) -> str:
        pid = self.main_pid()
        active = "active" if pid else "inactive"
        props = [
            ("Type", self.type), ("Id", self.name), ("Names", self.name),
            ("LoadState", "loaded" if self.loaded else "not-found"), ("ActiveState", active),
            ("SubState", "running" if pid else "dead"), ("MainPID", str(pid)), ("ExecMainPID", str(pid)),
            ("UnitFileState", self.enabled_state() if self.loaded else ""),
            ("FragmentPath", str(self.path or "")), ("CanReload", "yes" if self.service.get("ExecReload") else "no"),
            ("Description", (self.sections.get("Unit", {}).get("Description") or [self.name])[-1]),
        ]
        return "".join(f"{k}={v}\n" for k, v in props)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("-")]
    if not args:
        print("lab systemctl: no command", file=sys.stderr)
        return 1
    cmd, names = args[0], args[1:]
    try:
        if cmd == "daemon-reload":
            return 0
        if cmd == "list-unit-files":
            print("UNIT FILE STATE")
            for pattern in names:
                unit = Unit(pattern.rstrip("*"))
                if unit.loaded:
                    print(f"{unit.name} {unit.enabled_state()}")
            return 0
        if not names:
            print(f"lab systemctl: {cmd} needs a unit", file=sys.stderr)
            return 1
        rc = 0
        for name in names:
            unit = Unit(name)
            if cmd == "show":
                sys.stdout.write(unit.show())
            elif cmd == "is-active":
                print("active" if unit.active else "inactive")
                rc = rc or (0 if unit.active else 3)
            elif cmd == "is-enabled":
                state = unit.enabled_state()
                print(state)
                rc = rc or (0 if state in ("enabled", "static") else 1)
            elif not unit.loaded:
                print(f"Unit {unit.name} not found.", file=sys.stderr)
                return 5
            elif cmd == "start":
                unit.start()
            elif cmd == "stop":
                unit.stop()
            elif cmd == "restart":
                unit.stop()
                unit.start()
            elif cmd in ("reload", "reload-or-restart", "try-reload-or-restart"):
                if unit.active or cmd == "reload":
                    unit.reload()
                else:
                    unit.start()
            elif cmd in ("enable", "disable"):
                for line in unit.enable(cmd == "enable"):
                    print(line, file=sys.stderr)
            else:
                print(f"lab systemctl: unsupported command {cmd!r}", file=sys.stderr)
                return 1
        return rc
    except (UnitError, OSError, subprocess.SubprocessError) as exc:
        print(f"Job for {names[0] if names else cmd} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
