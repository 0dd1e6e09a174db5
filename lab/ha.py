"""The HA topology of the keepalived role: two directors, three real servers, one client.

Each of the six is a lab host (``lab.hosts``: its own network namespace, /etc, /run and
/tmp), cabled to two bridges without uplink::

    client 192.0.2.100 ─┐ front 192.0.2.0/24, 2001:db8::/64        VIP 192.0.2.10, 2001:db8::10
    dir1 192.0.2.1 ─────┤            dir1 10.10.0.2 ─┐ back 10.10.0.0/24   gateway VIP 10.10.0.1
    dir2 192.0.2.2 ─────┘            dir2 10.10.0.3 ─┤
                                     rs1..rs3 10.10.0.11-13 (default route via 10.10.0.1)

The directors run keepalived, installed and configured by the collection's keepalived role
(playbooks/ha_demo.yml) through the ``lvs.ipvs.nsenter`` connection; keepalived owns the VIPs
(a sync group of the front and the gateway instance) and the IPVS table (LVS-NAT, wrr,
health checks), with the connection sync daemon on the back network.  No systemd runs in
the lab: ``lab/systemctl.py`` stands in for systemctl inside the directors, so the role
manages the real keepalived.service unit.

The real servers answer HTTP on port 8080 with their name (503 while the file
/tmp/lvs-maintenance exists in the real server), and run a line echo service on port 9000
(``<name> <line>``) for long-lived connections.  Everything this module starts is
killed by PID; every loop is bounded in count and time.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab import hosts as labhosts
from lab import machines as labmachines
from lab import netns as labnet

ROOT = Path(__file__).resolve().parents[1]
SHIM = Path(__file__).resolve().with_name("systemctl.py")
INVENTORY = ROOT / "playbooks" / "inventories" / "ha" / "hosts.yml"

VIP, VIP6, GATEWAY_VIP = "192.0.2.10", "2001:db8::10", "10.10.0.1"
HTTP_PORT, ECHO_PORT, RS_HTTP_PORT, RS_ECHO_PORT = 80, 9000, 8080, 9000
DIRECTORS = {"dir1": ("192.0.2.1", "10.10.0.2"), "dir2": ("192.0.2.2", "10.10.0.3")}
REAL_SERVERS = {"rs1": ("10.10.0.11", 3), "rs2": ("10.10.0.12", 2), "rs3": ("10.10.0.13", 1)}
CLIENT = "192.0.2.100"

# The real servers' services (molecule/shared/files, installed on lab machines too): HTTP answering
# the server's name (refused while /tmp/lvs-down exists, 503 while /tmp/lvs-maintenance exists) and a
# line echo service for long-lived connections.
FILES = ROOT / "molecule" / "shared" / "files"
HTTP_SERVER, ECHO_SERVER = "ha_http_server.py", "echo_server.py"

# The client's probe for outage measurement: one HTTP request at a time, each on a new
# connection, for at most `duration` seconds; prints "<monotonic> ok <server>" for a 200 answer,
# else "<t> fail <why>".
CLIENT_PROBE = r'''
import socket, sys, time
address, port, duration, timeout, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
end = time.monotonic() + duration
while time.monotonic() < end:
    try:
        s = socket.create_connection((address, port), timeout=timeout)
        s.settimeout(timeout)
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "?"
        if status == "200":
            print("%.6f ok %s" % (time.monotonic(), body.decode().strip() or "?"), flush=True)
        else:
            print("%.6f fail HTTP-%s-%s" % (time.monotonic(), status, body.decode().strip().replace(" ", "-")), flush=True)
    except OSError as exc:
        print("%.6f fail %s" % (time.monotonic(), type(exc).__name__), flush=True)
    time.sleep(pause)
print("done", flush=True)
'''


def spec(python: str = sys.executable) -> dict[str, Any]:
    """The lab.hosts spec of the topology (the real servers' services included)."""
    hosts: list[dict[str, Any]] = [
        {"name": "client", "links": [{"segment": "front", "addresses": [f"{CLIENT}/24", "2001:db8::100/64"]}]},
    ]
    for i, (name, (front, back)) in enumerate(sorted(DIRECTORS.items()), 1):
        hosts.append({"name": name, "forwarding": True, "links": [
            {"segment": "front", "addresses": [f"{front}/24", f"2001:db8::{i}/64"]},
            {"segment": "back", "addresses": [f"{back}/24"]}]})
    for name, (address, _weight) in sorted(REAL_SERVERS.items()):
        services = [
            {"name": "http", "argv": [python, str(FILES / HTTP_SERVER), name, str(RS_HTTP_PORT)], "wait_port": RS_HTTP_PORT},
            {"name": "echo", "argv": [python, str(FILES / ECHO_SERVER), name, str(RS_ECHO_PORT)], "wait_port": RS_ECHO_PORT},
        ]
        hosts.append({"name": name, "gateway": GATEWAY_VIP, "services": services,
                      "links": [{"segment": "back", "addresses": [f"{address}/24"]}]})
    return {"hosts": hosts, "sysv": []}


@dataclass
class PlaybookRun:
    rc: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP counters per host."""
        out: dict[str, dict[str, int]] = {}
        in_recap = False
        for line in self.output.splitlines():
            if line.startswith("PLAY RECAP"):
                in_recap = True
                continue
            if in_recap and ":" in line:
                host, _colon, rest = line.partition(":")
                counts = {}
                for item in rest.split():
                    key, _equals, value = item.partition("=")
                    if value.isdigit():
                        counts[key] = int(value)
                if counts:
                    out[host.strip()] = counts
        return out

    def changed(self) -> int:
        return sum(c.get("changed", 0) for c in self.recap().values())


@dataclass
class Event:
    t: float
    host: str
    added: bool
    address: str


@dataclass
class Cycle:
    """One failover: who was killed, when, and what the network and the client saw."""

    victim: str
    killed_at: float
    moved_s: float | None = None
    outage_s: float | None = None
    new_master: str | None = None
    overlap: list[str] = field(default_factory=list)


class Cluster:
    """Build, drive and measure the HA topology (inside a lab guest: lab hosts are namespaces).

    lab/ha_machines.py drives the same topology on lab machines; the checks below use only the
    methods both implement (run, popen, addresses, ipvs, crash, recover, lvs_probe, ...).
    """

    python = sys.executable  # the Python of the hosts (the guest's, here)
    remote_clock = False  # the hosts' clock is this process's
    crash_kind = "links down + SIGKILL of the master"

    def __init__(self, workdir: Path, lab: str = "ha", log: Callable[[str], None] | None = None) -> None:
        self._require()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.workdir / "hosts"
        self.lab = lab
        self.log = log or (lambda msg: None)
        self.state: dict[str, Any] = {}
        self.owned = False  # destroy() removes the lab hosts only when create() made them
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.events: list[Event] = []
        self._monitors: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    @staticmethod
    def _require() -> None:
        labnet.require_guest()

    # -- building -------------------------------------------------------------

    def create(self) -> None:
        """Create the six lab hosts (the real servers' services start with them) and prepare the directors."""
        self.state = labhosts.create(self.state_dir, self.lab, spec())
        self.owned = True
        self.prepare()

    def attach(self) -> None:
        """Use lab hosts made by someone else (molecule's create) from their state directory."""
        self.state = json.loads((self.state_dir / labhosts.STATE_FILE).read_text())
        missing = (set(DIRECTORS) | set(REAL_SERVERS) | {"client"}) - set(self.state["hosts"])
        if missing:
            raise labnet.NetnsError(f"lab hosts {sorted(missing)} missing in {self.state_dir}")

    def prepare(self) -> None:
        """The directors get lab/systemctl.py as their systemctl (no systemd runs in the lab)."""
        for name in DIRECTORS:
            self.install_systemctl(name)

    def host(self, name: str) -> dict[str, Any]:
        return self.state["hosts"][name]

    def ns(self, name: str) -> str:
        return str(self.host(name)["netns"])

    def run(self, name: str, argv: list[str], check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return labhosts.host_run(self.host(name), argv, check=check, timeout=timeout)

    def popen(self, name: str, argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
        """A process in the host's network namespace (a client connection, say)."""
        return subprocess.Popen(["nsenter", f"--net=/run/netns/{self.ns(name)}", "--", *argv], **kw)

    def lvs_probe(self, args: dict[str, Any]) -> dict[str, Any]:
        """lvs.ipvs.lvs_probe from the client (the module, run as Ansible runs it)."""
        sys.path.insert(0, str(ROOT))
        from tests.support.modules import run_module  # pylint: disable=import-outside-toplevel

        return run_module("lvs_probe", dict(args, namespace=self.ns("client")))

    def counted_probe(self, director: str, args: dict[str, Any]) -> dict[str, Any]:
        """lvs_probe plus the new connections per real server by ``director``'s counters (stats_split)."""
        return self.lvs_probe(dict(args, director_stats=True, director_namespace=self.ns(director)))

    def install_systemctl(self, name: str) -> None:
        """lab/systemctl.py as /usr/bin/systemctl inside the host, and the marker Ansible looks for."""
        script = (
            "set -e\n"
            "mkdir -p /run/systemd/system /run/lab-systemctl\n"
            f"printf '#!/bin/sh\\nexec /usr/bin/python3 {SHIM} \"$@\"\\n' > /run/lab-systemctl/systemctl\n"
            "chmod 0755 /run/lab-systemctl/systemctl\n"
            "mount --bind /run/lab-systemctl/systemctl /usr/bin/systemctl\n"
        )
        self.run(name, ["sh", "-c", script])

    def _spawn(self, key: str, name: str, argv: list[str], ready: bool = True) -> subprocess.Popen[bytes]:
        host = self.host(name)
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{key}.log", "ab") as err:
            proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{host['netns']}", f"--mount={host['mnt']}", "--", *argv],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                    start_new_session=True)
        self.procs[key] = proc
        if ready:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                line = proc.stdout.readline() if sel.select(timeout=15) else b""
            if line.strip() != b"ready":
                self.stop(key)
                tail = (logs / f"{key}.log").read_text(errors="replace")[-1500:]
                raise labnet.NetnsError(f"{key} on {name} did not start: {tail}")
        return proc

    def stop(self, key: str) -> None:
        proc = self.procs.pop(key, None)
        if proc is not None:
            labnet._stop(proc)  # pylint: disable=protected-access

    def flag(self, name: str, flag: str, on: bool) -> None:
        """Create / remove /tmp/lvs-<flag> in a real server (down: its HTTP service stops listening;
        maintenance: it answers 503)."""
        self.run(name, ["sh", "-c", f'{"touch" if on else "rm -f"} /tmp/lvs-{flag}'])

    def inventory(self, path: Path | None = None) -> list[str]:
        """Inventory sources: the repository's HA example (playbooks/inventories/ha) plus how the
        lab reaches each host (the lvs.ipvs.nsenter connection into its namespaces)."""
        path = path or self.workdir / "lab-connection.json"
        hostvars = {name: {"ansible_nsenter_netns": host["netns"], "ansible_nsenter_mount": host["mnt"]}
                    for name, host in self.state["hosts"].items()}
        # Pipelining is slower in the UML guest (measured: 2.4 s instead of 0.9 s per module run).
        inv = {"all": {"vars": {"ansible_connection": "lvs.ipvs.nsenter", "ansible_pipelining": False,
                                "ansible_python_interpreter": sys.executable},
                       "hosts": hostvars}}
        path.write_text(json.dumps(inv, indent=1))
        return [str(INVENTORY), str(path)]

    def playbook(self, playbook: str | Path, extra_vars: dict[str, Any] | None = None, *args: str,
                 timeout: float = 600.0) -> PlaybookRun:
        """ansible-playbook with this repository as lvs.ipvs against the lab inventory."""
        sys.path.insert(0, str(ROOT))
        from tests.support.ansible import ansible_env  # pylint: disable=import-outside-toplevel

        path = Path(playbook)
        if not path.is_absolute():
            path = ROOT / "playbooks" / path
        cmd = [str(Path(sys.executable).with_name("ansible-playbook"))]
        for source in self.inventory():
            cmd += ["-i", source]
        cmd.append(str(path))
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        cmd += list(args)
        env = dict(ansible_env(), ANSIBLE_FORKS="6", ANSIBLE_HOST_KEY_CHECKING="false",
                   ANSIBLE_DISPLAY_SKIPPED_HOSTS="true")
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)

    # -- looking ----------------------------------------------------------------

    def addresses(self, name: str) -> set[str]:
        out = labnet.run(["ip", "-n", self.ns(name), "-j", "addr", "show"]).stdout
        return {a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", [])}

    def vip_holders(self, vip: str = VIP) -> list[str]:
        return [name for name in sorted(DIRECTORS) if vip in self.addresses(name)]

    def master(self, timeout: float = 20.0) -> str:
        """The director holding the VIP (waits, bounded, until exactly one does)."""
        deadline = time.monotonic() + timeout
        holders: list[str] = []
        while time.monotonic() < deadline:
            holders = self.vip_holders()
            if len(holders) == 1:
                return holders[0]
            time.sleep(0.5)
        raise AssertionError(f"expected one director with {VIP}, found {holders} after {timeout} s")

    def keepalived_pids(self, name: str) -> list[int]:
        """PIDs of the keepalived processes running in this director's network namespace."""
        inode = os.stat(f"/run/netns/{self.ns(name)}").st_ino
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() != "keepalived":
                    continue
                if os.stat(f"/proc/{entry}/ns/net").st_ino != inode:
                    continue
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state not in ("Z", "X"):
                pids.append(int(entry))
        return sorted(pids)

    def main_pid(self, name: str) -> int:
        out = self.run(name, ["systemctl", "show", "keepalived"]).stdout
        fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        return int(fields.get("MainPID", "0"))

    def ipvs(self, name: str, *args: str) -> str:
        return labnet.run(["ip", "netns", "exec", self.ns(name), "ipvsadm", *args]).stdout

    def real_servers_in_table(self, name: str) -> dict[str, int]:
        """address:port -> weight of the VIP:80 service in a director's table."""
        out = {}
        in_service = False
        for line in self.ipvs(name, "-Ln").splitlines():
            parts = line.split()
            if parts[:1] == ["TCP"]:
                in_service = parts[1] == f"{VIP}:{HTTP_PORT}"
            elif in_service and parts[:1] == ["->"] and parts[1][0].isdigit():
                out[parts[1]] = int(parts[3])
        return out

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float, step: float = 0.5) -> float:
        """Wait (bounded) until ``predicate()``; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if predicate():
                return time.monotonic() - started
            time.sleep(step)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    # -- address events -----------------------------------------------------------

    def watch_addresses(self) -> None:
        """Record every address added to / deleted from a director, with the time it was seen."""
        for name in sorted(DIRECTORS):
            self._watch(name)

    def _monitor_argv(self, name: str) -> list[str]:
        return ["ip", "-o", "-n", self.ns(name), "monitor", "address"]

    def _watch(self, name: str) -> None:
        proc = subprocess.Popen(self._monitor_argv(name), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self._monitors.append(proc)
        threading.Thread(target=self._read_monitor, args=(name, proc), daemon=True).start()

    def _read_monitor(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            now = time.monotonic()
            line = raw.decode(errors="replace")
            added = not line.startswith("Deleted")
            words = line.split()
            for key in ("inet", "inet6"):
                if key in words:
                    address = words[words.index(key) + 1].split("/")[0]
                    with self._lock:
                        self.events.append(Event(now, name, added, address))

    def stop_watching(self) -> None:
        while self._monitors:
            labnet._stop(self._monitors.pop())  # pylint: disable=protected-access

    def holding_timeline(self, vip: str, released: dict[str, list[float]]) -> list[tuple[float, str, bool]]:
        """(time, director, holds) for ``vip``; ``released`` adds the moments a director lost its links."""
        with self._lock:
            items = [(e.t, e.host, e.added) for e in self.events if e.address == vip]
        for host, times in released.items():
            items += [(t, host, False) for t in times]
        return sorted(items)

    @staticmethod
    def overlaps(timeline: list[tuple[float, str, bool]], initial: dict[str, bool]) -> list[str]:
        """Moments at which more than one director held the VIP."""
        holding = dict(initial)
        found = []
        for t, host, holds in timeline:
            holding[host] = holds
            if sum(holding.values()) > 1:
                found.append(f"{t:.3f}: {sorted(h for h, v in holding.items() if v)}")
        return found

    # -- failures -------------------------------------------------------------------

    def crash(self, name: str) -> float:
        """The director dies: links down, then SIGKILL to every keepalived process. Returns the time."""
        pids = self.keepalived_pids(name)
        if not pids:
            raise AssertionError(f"no keepalived runs on {name}")
        killed_at = time.monotonic()
        labnet.ip_batch(["link set eth0 down", "link set eth1 down"], ns=self.ns(name))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return killed_at

    def recover(self, name: str) -> None:
        """What a reboot of the dead director gives: no VIPs, links up, keepalived started by its unit."""
        self.wait_for(f"keepalived on {name} to be gone", lambda: not self.keepalived_pids(name), timeout=10, step=0.1)
        for vip, dev, plen in ((VIP, "eth0", 24), (VIP6, "eth0", 64), (GATEWAY_VIP, "eth1", 24)):
            labnet.run(["ip", "-n", self.ns(name), "addr", "del", f"{vip}/{plen}", "dev", dev], check=False)
        labnet.ip_batch(["link set eth0 up", "link set eth1 up"], ns=self.ns(name))
        self.run(name, ["systemctl", "start", "keepalived"])

    # -- client traffic ---------------------------------------------------------------

    def client_probe(self, duration: float, timeout: float = 0.25, pause: float = 0.05) -> "ClientProbe":
        proc = self._spawn("client-probe", "client", [self.python, "-c", CLIENT_PROBE, VIP, str(HTTP_PORT),
                                                      str(duration), str(timeout), str(pause)], ready=False)
        return ClientProbe(proc, remote_clock=self.remote_clock)

    # -- teardown ---------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop what this object started; remove the lab hosts if it created them."""
        self.stop_watching()
        for key in list(self.procs):
            self.stop(key)
        if self.state and self.owned:
            for name in DIRECTORS:
                self.run(name, ["systemctl", "stop", "keepalived"], check=False)
            labhosts.destroy(self.state_dir)  # kills what still runs in the hosts' namespaces, by PID
        self.state = {}


class ClientProbe:
    """Reads the client probe's lines as they come (a thread), for outage measurement."""

    def __init__(self, proc: subprocess.Popen[bytes], remote_clock: bool = False) -> None:
        self.proc = proc
        self.lines: list[tuple[float, bool, str]] = []
        # On a lab machine the probe's monotonic clock is the guest's: its times are mapped to this
        # host's clock by the smallest (receipt - sent) offset seen, i.e. the fastest delivery.
        self.remote_clock = remote_clock
        self._offset: float | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            parts = raw.decode(errors="replace").split(None, 2)
            if parts and parts[0] == "done":
                break
            if len(parts) >= 2:
                sent = float(parts[0])
                if self.remote_clock:
                    offset = time.monotonic() - sent
                    self._offset = offset if self._offset is None else min(self._offset, offset)
                    sent += self._offset
                self.lines.append((sent, parts[1] == "ok", parts[2].strip() if len(parts) > 2 else ""))
        self.done.set()

    def outage(self, at: float, until: float) -> float | None:
        """Client-visible outage of a failure at ``at``: the longest gap between two consecutive
        answers that spans part of [at, until] (``until``: when the VIP had moved)."""
        times = sorted(t for t, ok, _who in self.lines if ok)
        gaps = [b - a for a, b in zip(times, times[1:]) if b >= at and a <= until]
        return max(gaps) if gaps else None

    def failures(self) -> int:
        return sum(1 for _t, ok, _who in self.lines if not ok)

    def successes(self) -> int:
        return sum(1 for _t, ok, _who in self.lines if ok)

    def stop(self) -> None:
        labnet._stop(self.proc)  # pylint: disable=protected-access
        self._thread.join(timeout=5)


def failover_cycles(cluster: Cluster, cycles: int, settle: float = 2.5, report: Callable[[str], None] = print) -> list[Cycle]:
    """Kill whichever director holds the VIP, ``cycles`` times; measure each failover.

    Per cycle: the master crashes (``cluster.crash``); the time until the backup holds the VIP
    (address event); the client's outage (its probe: last answer before, first answer after);
    then the dead director recovers as BACKUP (nopreempt) and the next cycle kills the new master.
    """
    results: list[Cycle] = []
    released: dict[str, list[float]] = {name: [] for name in DIRECTORS}
    initial = {name: VIP in cluster.addresses(name) for name in DIRECTORS}
    probe = cluster.client_probe(duration=cycles * 20 + 30)
    cluster.wait_for("client answers", lambda: probe.successes() > 3, timeout=15, step=0.2)
    try:
        for n in range(1, cycles + 1):
            victim = cluster.master()
            survivor = next(d for d in DIRECTORS if d != victim)
            killed_at = cluster.crash(victim)
            released[victim].append(killed_at)
            cycle = Cycle(victim, killed_at)

            def moved(survivor: str = survivor, killed_at: float = killed_at) -> bool:
                return any(e.host == survivor and e.added and e.address == VIP and e.t > killed_at for e in list(cluster.events))

            cluster.wait_for(f"{VIP} on {survivor} (cycle {n})", moved, timeout=15, step=0.05)
            got = min(e.t for e in list(cluster.events) if e.host == survivor and e.added and e.address == VIP and e.t > killed_at)
            cycle.moved_s = got - killed_at
            cycle.new_master = survivor
            try:
                cluster.wait_for(f"client answers after cycle {n}",
                                 lambda got=got: any(ok and t > got for t, ok, _who in list(probe.lines)),
                                 timeout=15, step=0.05)
            except AssertionError as exc:
                seen = [f"{t - killed_at:+.2f} s {'ok' if ok else 'fail'} {who}" for t, ok, who in list(probe.lines)[-8:]]
                raise AssertionError(f"{exc}; the VIP moved to {survivor} {got - killed_at:.2f} s after {victim} died; "
                                     f"the client's last answers: {seen}") from None
            cycle.outage_s = probe.outage(killed_at, got)
            cluster.recover(victim)
            time.sleep(settle)  # the recovered director hears the master's adverts and stays BACKUP
            report(f"cycle {n:2d}: killed {victim}, VIP on {survivor} after {cycle.moved_s:.2f} s, "
                   f"client outage {cycle.outage_s:.2f} s")
            results.append(cycle)
    finally:
        probe.stop()
    timeline = cluster.holding_timeline(VIP, released)
    overlap = Cluster.overlaps(timeline, initial)
    if results:
        results[-1].overlap = overlap
    return results


def summary(results: list[Cycle]) -> dict[str, Any]:
    moved = [c.moved_s for c in results if c.moved_s is not None]
    outage = [c.outage_s for c in results if c.outage_s is not None]
    return {
        "cycles": len(results),
        "moved_median_s": round(statistics.median(moved), 3) if moved else None,
        "moved_max_s": round(max(moved), 3) if moved else None,
        "outage_median_s": round(statistics.median(outage), 3) if outage else None,
        "outage_max_s": round(max(outage), 3) if outage else None,
        "both_held_vip": results[-1].overlap if results else [],
    }


# -- the verification (molecule/ha verify, tests) ---------------------------------------------------

WEIGHTS = {"rs1": 3, "rs2": 2, "rs3": 1}
CYCLES = 20
MOVED_MAX_S = 3.5

# A long-lived client connection: sends "before", waits for "go" on stdin, sends "after".
LONG_LIVED = r'''
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.settimeout(25)
f = s.makefile("rwb", buffering=0)
f.write(b"before\n")
print(f.readline().decode().strip(), flush=True)
sys.stdin.readline()
f.write(b"after\n")
try:
    print(f.readline().decode().strip() or "EOF", flush=True)
except OSError as exc:
    print("ERROR %s" % exc, flush=True)
'''


def probe_args(count: int, weights: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    args = dict(address=VIP, port=HTTP_PORT, count=count, timeout=2, **extra)
    if weights is not None:
        args.update(weights=weights, max_deviation=0)
    return args


def probe(cluster: Cluster, count: int, weights: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    """lvs.ipvs.lvs_probe from the client: ``count`` requests to the VIP."""
    return cluster.lvs_probe(probe_args(count, weights, **extra))


def check_ready(cluster: Cluster) -> str:
    """keepalived runs on both directors, one holds the VIP, the health checks added every real server."""
    for name in DIRECTORS:
        if not cluster.keepalived_pids(name):
            raise AssertionError(f"keepalived does not run on {name}")
    master = cluster.master()
    cluster.wait_for("the health checks to add the three real servers on both directors",
                     lambda: all(len(cluster.real_servers_in_table(d)) == 3 for d in DIRECTORS), timeout=30)
    return master


def check_split(cluster: Cluster, report: Callable[[str], None]) -> dict[str, Any]:
    master = cluster.master()
    result = cluster.counted_probe(master, probe_args(60, WEIGHTS, max_failures=0))
    if result.get("failed") or result["failed_requests"] or result["split"] != {"rs1": 30, "rs2": 20, "rs3": 10} or \
            result["stats_split"] != {"10.10.0.11:8080": 30, "10.10.0.12:8080": 20, "10.10.0.13:8080": 10}:
        raise AssertionError(f"weighted split: {result}")
    report(f"weighted split (wrr 3:2:1) of 60 requests from the client through {master}: {result['split']}; "
           f"director counters {result['stats_split']}")
    return {"split": result["split"], "director_counters": result["stats_split"], "failed_requests": result["failed_requests"]}


def check_health(cluster: Cluster, report: Callable[[str], None]) -> dict[str, Any]:
    cluster.flag("rs3", "down", True)
    try:
        removed = cluster.wait_for("the HTTP_GET check to remove rs3 on both directors",
                                   lambda: all("10.10.0.13:8080" not in cluster.real_servers_in_table(d) for d in DIRECTORS),
                                   timeout=20)
        down = probe(cluster, 30, {"rs1": 3, "rs2": 2}, max_failures=0)
        if down.get("failed") or down["failed_requests"] or down["split"] != {"rs1": 18, "rs2": 12}:
            raise AssertionError(f"with rs3 down: {down}")
    finally:
        cluster.flag("rs3", "down", False)
    back = cluster.wait_for("rs3 back on both directors",
                            lambda: all(cluster.real_servers_in_table(d).get("10.10.0.13:8080") == 1 for d in DIRECTORS),
                            timeout=20)
    up = probe(cluster, 60, WEIGHTS, max_failures=0)
    if up.get("failed") or up["failed_requests"] or up["split"] != {"rs1": 30, "rs2": 20, "rs3": 10}:
        raise AssertionError(f"with rs3 back: {up}")
    report(f"health check: rs3's HTTP service stopped -> removed after {removed:.1f} s, split {down['split']} "
           f"without a failed request; started -> back after {back:.1f} s, split {up['split']}")
    return {"removed_after_s": round(removed, 1), "split_without_rs3": down["split"], "back_after_s": round(back, 1),
            "split_with_rs3": up["split"]}


def check_sync_daemon(cluster: Cluster, report: Callable[[str], None]) -> dict[str, Any]:
    master = cluster.master()
    backup = next(d for d in DIRECTORS if d != master)
    proc = cluster.popen("client", [cluster.python, "-c", LONG_LIVED, VIP, str(ECHO_PORT)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().strip()
        if not first.endswith(" before"):
            raise AssertionError(f"no answer on the long-lived connection: {first!r}")
        server = first.split()[0]

        def entry() -> list[str]:
            return [line for line in cluster.ipvs(backup, "-Lnc").splitlines()
                    if f"{VIP}:{ECHO_PORT}" in line and f"{CLIENT}:" in line]

        cluster.wait_for(f"the connection in {backup}'s table (sync daemon)", lambda: bool(entry()), timeout=10)
        synced = entry()
        killed_at = cluster.crash(master)
        cluster.wait_for(f"the VIP on {backup}", lambda: cluster.vip_holders() == [backup], timeout=15, step=0.1)
        moved = time.monotonic() - killed_at
        proc.stdin.write("go\n")
        proc.stdin.flush()
        second = proc.stdout.readline().strip()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    cluster.recover(master)
    time.sleep(2.5)  # the recovered director settles as BACKUP
    if second != f"{server} after":
        raise AssertionError(f"the connection to {server} broke across the failover: {second!r}")
    report(f"sync daemon: a connection to {server} opened through {master} was in {backup}'s table before the "
           f"failover ({synced[0].split()[2]}); after {master} died and {backup} took the VIP ({moved:.2f} s) "
           f"it still answered: {second!r}")
    return {"server": server, "backup_entry_before_failover": synced, "vip_moved_s": round(moved, 2),
            "answer_after_failover": second}


def check_failover(cluster: Cluster, cycles: int, report: Callable[[str], None]) -> dict[str, Any]:
    cluster.watch_addresses()
    try:
        results = failover_cycles(cluster, cycles, report=report)
    finally:
        cluster.stop_watching()
    figures = summary(results)
    figures["per_cycle"] = [{"killed": c.victim, "vip_moved_s": round(c.moved_s or 0, 3),
                             "client_outage_s": round(c.outage_s, 3) if c.outage_s is not None else None}
                            for c in results]
    report("failover over %d cycles (%s): VIP moved median %.2f s, max %.2f s; "
           "client outage median %.2f s, max %.2f s; both directors held the VIP: %s"
           % (figures["cycles"], cluster.crash_kind, figures["moved_median_s"], figures["moved_max_s"], figures["outage_median_s"],
              figures["outage_max_s"], figures["both_held_vip"] or "never"))
    problems = []
    if figures["cycles"] != cycles:
        problems.append(f"{figures['cycles']} of {cycles} cycles")
    if figures["both_held_vip"]:
        problems.append(f"both directors held the VIP at {figures['both_held_vip']}")
    if figures["moved_max_s"] is None or figures["moved_max_s"] > MOVED_MAX_S:
        problems.append(f"the VIP took {figures['moved_max_s']} s to move (at most {MOVED_MAX_S} s)")
    if any(c["client_outage_s"] is None for c in figures["per_cycle"]):
        problems.append("a cycle without a measured outage")
    if {c["killed"] for c in figures["per_cycle"]} != set(DIRECTORS):
        problems.append("failovers did not go both ways")
    if problems:
        raise AssertionError("; ".join(problems) + f": {figures}")
    return figures


def verify(cluster: Cluster, cycles: int = CYCLES, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Everything the HA scenario proves, in order; raises AssertionError on the first failure."""
    started = time.monotonic()
    figures: dict[str, Any] = {"master_at_start": check_ready(cluster)}
    figures["split"] = check_split(cluster, report)
    figures["health_check"] = check_health(cluster, report)
    figures["sync_daemon"] = check_sync_daemon(cluster, report)
    figures["failover"] = check_failover(cluster, cycles, report)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    import argparse  # pylint: disable=import-outside-toplevel

    p = argparse.ArgumentParser(prog="python -m lab.ha", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--state", required=True, type=Path, help="directory of the lab hosts' state (lab.hosts --state)")
    p.add_argument("--lab", default="ha", help="name prefix of the namespaces")
    p.add_argument("--machines", default=None, metavar="NAME",
                   help="drive the lab machines of topology NAME (lab/ha_machines.py) instead of lab hosts")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("create", help="create the six lab hosts and prepare the directors")
    sub.add_parser("prepare", help="prepare the directors of existing lab hosts (systemctl stand-in)")
    v = sub.add_parser("verify", help="split, health check, sync daemon, failover cycles; JSON figures")
    v.add_argument("--cycles", type=int, default=CYCLES)
    v.add_argument("--out", type=Path, default=None, help="also write the figures to this file")
    args = p.parse_args(argv)
    if args.machines:
        from lab.ha_machines import MachinesCluster  # pylint: disable=import-outside-toplevel

        cluster: Cluster = MachinesCluster(args.machines, args.state)
    else:
        cluster = Cluster(args.state.parent, lab=args.lab)
        cluster.state_dir = args.state
    try:
        if args.cmd == "create":
            cluster.state = labhosts.create(args.state, args.lab, spec())
            cluster.prepare()
            print(json.dumps({n: {"netns": h["netns"], "mnt": h["mnt"]} for n, h in cluster.state["hosts"].items()}))
            return 0
        cluster.attach()
        if args.cmd == "prepare":
            cluster.prepare()
            return 0
        figures = verify(cluster, args.cycles)
    except (AssertionError, labnet.NetnsError, labhosts.LabHostsError, labmachines.MachinesError) as exc:
        print(f"lab.ha {args.cmd}: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop_watching()
        for key in list(cluster.procs):
            cluster.stop(key)
    text = json.dumps(figures, indent=1)
    print(text)
    targets = [args.out] if args.out else []
    if os.environ.get("LVS_LAB_SHARE"):  # one file per verify run (molecule/ha verifies before and after a reboot)
        share = Path(os.environ["LVS_LAB_SHARE"])
        names = [share / "ha_figures.json"] + [share / f"ha_figures-{n}.json" for n in range(2, 100)]
        targets.append(next(path for path in names if not path.exists()))
    for target in targets:
        target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
