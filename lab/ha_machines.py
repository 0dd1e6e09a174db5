"""The HA topology of lab/ha.py on lab machines: every host its own UML guest booting systemd.

molecule/ha boots the six machines (lab/machines.py, the scenario's platforms: the same cabling
and addresses as lab/ha.py's spec, the real servers' services as systemd units) and runs
playbooks/ha_demo.yml over ssh; this module drives and measures them for its verify, with the
checks of lab/ha.py.  What differs from the namespace lab:

- commands run over ssh (the topology's ssh_config: ControlMaster through its private namespace);
- a crash is a hard power-off of the master's guest (the kernel, keepalived and the VIPs die at
  once), and the recovery a cold boot: the director's own systemd starts keepalived, which comes
  back as BACKUP (nopreempt);
- lvs.ipvs.lvs_probe runs on the client as Ansible runs it (an ad-hoc task over ssh), and the
  director's counters are read with ipvsadm on the director.

Remote processes are bounded by ``timeout`` on the machine; local ssh clients are ended by PID.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from lab import ha
from lab import machines

LAB_LIB = machines.LAB_LIB
WATCH_MAX_S = 3600  # an address monitor never outlives this, whatever happens to its ssh client


class MachinesCluster(ha.Cluster):
    """lab/ha.py's Cluster on the lab machines of topology ``name`` (booted by molecule's create)."""

    python = "/usr/bin/python3"
    crash_kind = "hard power-off of the master's guest, then a cold boot"
    remote_clock = True  # each machine's monotonic clock is its own kernel's

    def __init__(self, name: str, workdir: Path, log: Callable[[str], None] | None = None) -> None:
        super().__init__(workdir, lab=name, log=log)
        self.d = machines.lab_dir(name)

    @staticmethod
    def _require() -> None:
        if os.geteuid() != 0:
            raise machines.MachinesError("lab machines: run as root on the host")

    # -- building -------------------------------------------------------------

    def create(self) -> None:
        raise machines.MachinesError("lab machines: molecule's create boots them (python -m lab.machines up)")

    def attach(self) -> None:
        state = machines.load_state(self.d)
        if state.get("phase") != "running":
            raise machines.MachinesError(f"lab machines: {self.lab} is not running (phase {state.get('phase')})")
        self.state = {"hosts": {h["name"]: h for h in state["hosts"]}}
        missing = (set(ha.DIRECTORS) | set(ha.REAL_SERVERS) | {"client"}) - set(self.state["hosts"])
        if missing:
            raise machines.MachinesError(f"lab machines: {sorted(missing)} missing in {self.lab}")

    def prepare(self) -> None:
        """Nothing to prepare: the machines boot systemd."""

    def ns(self, name: str) -> str:
        raise machines.MachinesError(f"lab machines: {name} is a machine, not a namespace of this host")

    def _ssh(self, name: str, argv: list[str]) -> list[str]:
        return machines.ssh_argv(self.d, name, shlex.join(argv))

    def run(self, name: str, argv: list[str], check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return machines.ssh(self.d, name, shlex.join(argv), timeout=timeout, check=check)

    def popen(self, name: str, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(self._ssh(name, ["timeout", str(WATCH_MAX_S), *argv]), **kw)

    def _spawn(self, key: str, name: str, argv: list[str], ready: bool = True) -> subprocess.Popen[bytes]:
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{key}.log", "ab") as err:
            proc = self.popen(name, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                              start_new_session=True)
        self.procs[key] = proc
        return proc

    def inventory(self, path: Path | None = None) -> list[str]:
        """The repository's HA inventory plus how the lab reaches the machines (ssh)."""
        path = path or self.d / "inventory.yml"
        path.write_text(machines.inventory(self.d))
        return [str(ha.INVENTORY), str(path)]

    # -- looking ----------------------------------------------------------------

    def addresses(self, name: str) -> set[str]:
        if not self.powered(name):
            return set()
        out = self.run(name, ["ip", "-j", "addr", "show"]).stdout
        return {a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])}

    def keepalived_pids(self, name: str) -> list[int]:
        if not self.powered(name):
            return []
        out = self.run(name, ["pgrep", "-x", "keepalived"], check=False, timeout=30).stdout
        return sorted(int(p) for p in out.split() if p.isdigit())

    def ipvs(self, name: str, *args: str) -> str:
        return self.run(name, ["ipvsadm", *args]).stdout

    def powered(self, name: str) -> bool:
        return any(h["name"] == name and h.get("powered") for h in machines.load_state(self.d)["hosts"])

    def _monitor_argv(self, name: str) -> list[str]:
        return self._ssh(name, ["timeout", str(WATCH_MAX_S), "ip", "-o", "monitor", "address"])

    # -- failures -------------------------------------------------------------------

    def crash(self, name: str) -> float:
        """Hard power-off of the director's guest: kernel, keepalived and its addresses die at once."""
        if not self.keepalived_pids(name):
            raise AssertionError(f"no keepalived runs on {name}")
        killed_at = time.monotonic()
        machines.request(self.d, {"op": "poweroff", "hosts": [name]})
        # The ssh master connection to the dead machine would hang the next commands until its
        # keep-alives give up (30 s): close it now.
        subprocess.run(["ssh", "-F", str(self.d / "ssh_config"), "-O", "exit", name],
                       capture_output=True, timeout=15, check=False)
        return killed_at

    def recover(self, name: str) -> None:
        """Cold boot of the dead director: its systemd starts keepalived (BACKUP: nopreempt)."""
        machines.request(self.d, {"op": "boot", "hosts": [name]})
        machines.wait_running(self.d, [name], timeout=180)
        self.wait_for(f"keepalived on {name}", lambda: bool(self.keepalived_pids(name)), timeout=30)
        if self._monitors:  # the address monitor of the dead machine died with it
            self._watch(name)

    # -- client traffic ---------------------------------------------------------------

    def lvs_probe(self, args: dict[str, Any]) -> dict[str, Any]:
        """lvs.ipvs.lvs_probe on the client, as an Ansible task over ssh (ad-hoc); its result."""
        sys.path.insert(0, str(ha.ROOT))
        from tests.support.ansible import ansible_env  # pylint: disable=import-outside-toplevel

        cmd = [str(Path(sys.executable).with_name("ansible")), "client"]
        for source in self.inventory():
            cmd += ["-i", source]
        cmd += ["-m", "lvs.ipvs.lvs_probe", "-a", json.dumps(args)]
        # The default callback, its result as JSON: "client | SUCCESS => {...}" (or FAILED!).
        env = dict(ansible_env(), ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.d / "cp"))
        env.pop("ANSIBLE_PYTHON_INTERPRETER", None)  # the machines' own Python (the inventory's)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
        try:
            result = json.loads(proc.stdout.split("=> ", 1)[1])
        except (ValueError, IndexError) as exc:
            raise AssertionError(f"lvs_probe on the client gave no result ({exc}): {(proc.stdout + proc.stderr)[-2000:]}")
        return result

    def counters(self, director: str) -> dict[str, int]:
        """Connections per real server ('address:port') of the VIP's HTTP service, by the director's counters."""
        out = self.ipvs(director, "-Ln", "--stats", "--exact", "-t", f"{ha.VIP}:{ha.HTTP_PORT}")
        return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+->\s+(\S+)\s+(\d+)\s", out, re.M)}

    def counted_probe(self, director: str, args: dict[str, Any]) -> dict[str, Any]:
        # The exported counters lag up to one estimator period (2 s, kernel 6.1): settle before each read.
        time.sleep(2.5)
        before = self.counters(director)
        result = self.lvs_probe(args)
        time.sleep(2.5)
        after = self.counters(director)
        result["stats_split"] = {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0) > 0}
        return result

    # -- teardown ---------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop what this object started (molecule's destroy powers the machines off)."""
        self.stop_watching()
        for key in list(self.procs):
            self.stop(key)
