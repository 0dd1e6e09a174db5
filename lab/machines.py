"""Lab *machines*: every host of a topology is its own user-mode Linux guest booting systemd.

Each machine has its own kernel (IPVS modules load on demand from /usr/lib/uml/modules, nothing
is pre-loaded), systemd 252 as PID 1, a persistent ext4 disk (the upper layer of an overlay
on the read-only host root, so /etc survives a reboot), fixed MACs and static addresses from
the topology, and is reached by ssh.  A reboot is a real one (``systemctl reboot``: UML
re-executes itself, the disk keeps its state); a hard power-off kills the guest and ``boot``
starts it again.

Network: one ``uml_switch`` per segment (UML's daemon transport), all in a private network
namespace ``lvsm-<name>`` created for the topology; nothing is attached to a host interface.
Every machine also has a management NIC (``mgmt0``, last one) on a management switch that is
bridged to a tap inside that namespace, where the controller's ssh connections enter through
``lab/ssh_relay.py`` (ProxyCommand ``ip netns exec``).  So Ansible runs on the host, at host
speed, over ordinary ssh, and the topology's own segments carry only the topology's traffic.

A detached *keeper* process owns everything that runs: it holds the topology's CPU slots (every
lab CPU, or the ones ``LVS_LAB_MACHINE_CPUS`` names: the pytest lab plugin gives each machines
job its lane's CPU, so two topologies or a topology and a guest lane run side by side; the
topology's guests share those CPUs, pinned round-robin), starts the switches and the
guests, answers control requests on ``<dir>/ctl.sock``, and tears everything down (guests,
switches, the namespace) on ``down``, on SIGTERM, or when its owner process dies.  Guests and
switches die with the keeper (PR_SET_PDEATHSIG); ``python -m lab clean`` removes what a
killed keeper left.

Command line (on the host, as root)::

    python -m lab.machines up      --name NAME [--owner PID] < spec.json   # prints the inventory
    python -m lab.machines status  --name NAME
    python -m lab.machines poweroff --name NAME HOST...   # hard power-off (kill the guest)
    python -m lab.machines boot    --name NAME HOST...    # power on, wait for ssh
    python -m lab.machines snapshot --name NAME --out FILE
    python -m lab.machines compare --name NAME --with FILE [--consume] [--missing-ok]
    python -m lab.machines down    --name NAME [--keep-disks]

Spec (molecule ``platforms`` are its ``hosts``)::

    {"hosts": [{"name": "director", "links": [{"segment": "lan", "addresses": ["192.0.2.1/24"]}],
                "gateway": "192.0.2.254", "gateway6": null, "forwarding": false, "mem": "256M",
                "setup": [["ln", "-sfn", "/usr/sbin/iptables-legacy", "/etc/alternatives/iptables"]],
                "services": [{"name": "http", "argv": ["python3", "/usr/local/lib/lvs-lab/http_server.py",
                              "rs1", "8080"], "wait_port": 8080}]}],
     "files": ["molecule/shared/files/http_server.py"]}

``files`` (repository paths) and ``scripts`` (``{file name: text}``) are installed on every
machine under /usr/local/lib/lvs-lab/.
``setup`` commands run once, at the first boot (the host's installation).  ``services`` are
systemd units of the machine (``lab-<name>.service``), started at every boot.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from lab import uml

MACHINES_DIR = uml.STATE_DIR / "machines"
NETNS_PREFIX = "lvsm-"
MGMT_NET = "172.31.250"          # management segment, inside the topology's namespace only
CONTROLLER_ADDR = f"{MGMT_NET}.254"
STATE_FILE = "state.json"
SPEC_FILE = "spec.json"
CTL_SOCK = "ctl.sock"
DISK_SIZE = "1G"
DEFAULT_MEM = "256M"
BOOT_TIMEOUT = 300.0
CPU_WAIT_TIMEOUT = 3600.0  # the keeper waits this long for every CPU slot

LAB_LIB = "/usr/local/lib/lvs-lab"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,15}$")  # hosts and segments (host names: no underscore)
_TOPOLOGY = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")  # a topology: a molecule scenario's name, such as ha_dr


class MachinesError(RuntimeError):
    """A lab machines operation failed; the message names the topology, host and step."""


def machine_cpus() -> list[int]:
    """The CPUs a topology's guests run on: ``LVS_LAB_MACHINE_CPUS`` (comma-separated), else all lab CPUs."""
    allowed = uml.host_cpus()
    raw = os.environ.get("LVS_LAB_MACHINE_CPUS", "").strip()
    if not raw:
        return allowed
    try:
        cpus = sorted({int(c) for c in raw.split(",") if c.strip()})
    except ValueError:
        raise MachinesError(f"lab machines: LVS_LAB_MACHINE_CPUS={raw!r} is not a comma-separated list of CPUs") from None
    if not cpus or not set(cpus) <= set(allowed):
        raise MachinesError(f"lab machines: LVS_LAB_MACHINE_CPUS={raw!r}: allowed CPUs are {allowed}")
    return cpus


# -- paths and state -----------------------------------------------------------

def lab_dir(name: str) -> Path:
    if not _TOPOLOGY.match(name):
        raise MachinesError(f"lab machines: name {name!r} must match {_TOPOLOGY.pattern}")
    return MACHINES_DIR / name


def netns_of(name: str) -> str:
    return f"{NETNS_PREFIX}{name}"


def load_state(d: Path) -> dict[str, Any]:
    try:
        return json.loads((d / STATE_FILE).read_text())
    except (OSError, ValueError):
        raise MachinesError(f"lab machines: no topology in {d} (run up first)") from None


def save_state(d: Path, state: dict[str, Any]) -> None:
    tmp = d / f".{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(d / STATE_FILE)


def _mac(name: str, host: str, index: int) -> str:
    digest = hashlib.sha256(f"{name}/{host}/{index}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def _run(argv: list[str], check: bool = True, timeout: float = 60.0, **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        raise MachinesError(f"lab machines: {shlex.join(argv)} failed (rc {proc.returncode}): "
                            f"{(proc.stderr or proc.stdout).strip()}")
    return proc


# -- building a topology -----------------------------------------------------

def plan(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The topology's state: hosts with interfaces, MACs, management addresses, CPUs."""
    hosts = spec.get("hosts") or []
    if not hosts:
        raise MachinesError("lab machines: the spec has no hosts")
    cpus = machine_cpus()
    segments: list[str] = []
    out = []
    names = set()
    for index, h in enumerate(hosts):
        hname = str(h.get("name", ""))
        if not _NAME.match(hname) or hname in names:
            raise MachinesError(f"lab machines: hosts[{index}].name {hname!r} is not a unique short name")
        names.add(hname)
        links = []
        for li, link in enumerate(h.get("links") or []):
            seg = str(link["segment"])
            if not _NAME.match(seg) or seg == "mgmt":
                raise MachinesError(f"lab machines: {hname}: links[{li}].segment {seg!r} is not a short name")
            if seg not in segments:
                segments.append(seg)
            links.append({"segment": seg, "ifname": f"eth{li}", "mac": link.get("mac") or _mac(name, hname, li),
                          "addresses": list(link.get("addresses") or [])})
        out.append({
            "name": hname,
            "index": index,
            "cpu": cpus[index % len(cpus)],
            "mem": str(h.get("mem") or DEFAULT_MEM),
            "links": links,
            "mgmt": {"ifname": f"eth{len(links)}", "mac": _mac(name, hname, 99), "address": f"{MGMT_NET}.{index + 1}"},
            "gateway": h.get("gateway"),
            "gateway6": h.get("gateway6"),
            "forwarding": bool(h.get("forwarding")),
            "setup": [list(map(str, c)) for c in h.get("setup") or []],
            "services": list(h.get("services") or []),
        })
    return {"name": name, "netns": netns_of(name), "segments": segments, "hosts": out,
            "files": list(spec.get("files") or []), "scripts": dict(spec.get("scripts") or {})}


def _target_python_lib() -> str:
    real = os.path.basename(os.path.realpath("/usr/bin/python3"))
    return f"/usr/local/lib/{real}/dist-packages"


def _network_script(host: dict[str, Any]) -> str:
    lines = ["#!/bin/sh", "# Static addresses of this lab machine (lab/machines.py); what the platform's",
             "# network configuration would bring up.", "set -e", "modprobe ipv6 2>/dev/null || true",
             "ip link set lo up",
             f"ip link set {host['mgmt']['ifname']} name mgmt0",
             f"ip address replace {host['mgmt']['address']}/24 dev mgmt0", "ip link set mgmt0 up"]
    for link in host["links"]:
        for addr in link["addresses"]:
            lines.append(f"ip address replace {addr} dev {link['ifname']}" + (" nodad" if ":" in addr else ""))
        lines.append(f"ip link set {link['ifname']} up")
    if host.get("gateway"):
        lines.append(f"ip route replace default via {host['gateway']}")
    if host.get("gateway6"):
        lines.append(f"ip -6 route replace default via {host['gateway6']}")
    return "\n".join(lines) + "\n"


def _unit(description: str, service: str, after: str = "", before: str = "", wanted_by: str = "multi-user.target",
          extra_unit: str = "") -> str:
    return (f"[Unit]\nDescription={description}\n" + (f"After={after}\n" if after else "")
            + (f"Before={before}\n" if before else "") + extra_unit
            + f"\n[Service]\n{service}\n\n[Install]\nWantedBy={wanted_by}\n")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _enable(seed: Path, unit: str, target: str = "multi-user.target") -> None:
    link = seed / "etc/systemd/system" / f"{target}.wants" / unit
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(f"/etc/systemd/system/{unit}")


def build_seed(d: Path, topo: dict[str, Any], host: dict[str, Any], pubkey: str) -> Path:
    """The files the machine's first boot installs (lab/machine_init.sh copies them over /)."""
    mdir = d / host["name"]
    seed = mdir / "share" / "seed"
    shutil.rmtree(seed, ignore_errors=True)
    seed.mkdir(parents=True)
    _write(seed / "etc/hostname", host["name"] + "\n")
    _write(seed / "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{host['name']}\n"
                               "::1\tlocalhost ip6-localhost ip6-loopback\n")
    # No DNS in the lab: lookups fail at once instead of heading for an address outside.
    _write(seed / "etc/resolv.conf", "# lab machine: no DNS\noptions timeout:1 attempts:1\n")
    _write(seed / "etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    _write(seed / "usr/local/sbin/lab-network", _network_script(host), 0o755)
    _write(seed / "etc/systemd/system/lab-network.service",
           _unit("Lab machine network (static addresses)", "Type=oneshot\nRemainAfterExit=yes\n"
                 "ExecStart=/usr/local/sbin/lab-network", after="systemd-sysctl.service",
                 before="network.target ssh.service", extra_unit="Wants=network.target\nDefaultDependencies=no\n"))
    _enable(seed, "lab-network.service")
    if host["forwarding"]:
        _write(seed / "etc/sysctl.d/10-lab-router.conf", "net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\n")
    if host["setup"]:
        script = "#!/bin/sh\nset -e\n" + "".join(shlex.join(c) + "\n" for c in host["setup"]) + "touch /etc/lab-setup-done\n"
        _write(seed / "usr/local/sbin/lab-setup", script, 0o755)
        _write(seed / "etc/systemd/system/lab-setup.service",
               _unit("Lab machine installation (once)", "Type=oneshot\nRemainAfterExit=yes\n"
                     "ExecStart=/usr/local/sbin/lab-setup", before="network.target",
                     extra_unit="ConditionPathExists=!/etc/lab-setup-done\nDefaultDependencies=no\n"
                                "After=local-fs.target\n"))
        _enable(seed, "lab-setup.service")
    for svc in host["services"]:
        unit = f"lab-{svc['name']}.service"
        _write(seed / "etc/systemd/system" / unit,
               _unit(f"Lab application {svc['name']}", "ExecStart=" + shlex.join(map(str, svc["argv"])) + "\nRestart=no",
                     after="lab-network.service network.target"))
        _enable(seed, unit)
    # ssh: the controller's key, per-machine host key, no shell start-up cost (root's rc on the
    # image runs pyenv init: 16-20 s per command), no DNS lookups.
    _write(seed / "root/.ssh/authorized_keys", pubkey, 0o600)
    (seed / "root/.ssh").chmod(0o700)
    for rc in (".bashrc", ".profile"):
        skel = Path("/etc/skel") / rc
        _write(seed / "root" / rc, skel.read_text() if skel.is_file() else "")
    _write(seed / "etc/ssh/sshd_config.d/lab.conf",
           "# lab machine\nHostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\nPasswordAuthentication no\n"
           "X11Forwarding no\nMaxStartups 50\n")
    key = seed / "etc/ssh/ssh_host_ed25519_key"
    key.parent.mkdir(parents=True, exist_ok=True)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host['name']}", "-f", str(key)])
    # What a host of the fleet has installed: pyroute2 for the single-object modules (no network
    # in the lab to install it), and the lab's application scripts.
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or not spec.submodule_search_locations:
        raise MachinesError("lab machines: pyroute2 is not installed in this Python (scripts/setup.sh)")
    src = Path(list(spec.submodule_search_locations)[0])
    target = seed / _target_python_lib().lstrip("/") / "pyroute2"
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
    # Byte-compiled as a package install does (Debian's py3compile): importing it then writes nothing
    # on the machine, so a check-mode run that imports it leaves the disk as it was.
    _run(["/usr/bin/python3", "-m", "compileall", "-q", "-d", f"{_target_python_lib()}/pyroute2", str(target)])
    for rel in topo["files"]:
        p = (uml.REPO_ROOT / rel).resolve()
        if not p.is_file() or not p.is_relative_to(uml.REPO_ROOT):
            raise MachinesError(f"lab machines: files: {rel!r} is not a file of the repository")
        _write(seed / LAB_LIB.lstrip("/") / p.name, p.read_text(), 0o755)
    for fname, text in topo.get("scripts", {}).items():
        if "/" in fname or fname.startswith("."):
            raise MachinesError(f"lab machines: scripts: {fname!r} is not a plain file name")
        _write(seed / LAB_LIB.lstrip("/") / fname, text, 0o755)
    return seed


def make_disk(path: Path) -> None:
    path.unlink(missing_ok=True)
    _run(["truncate", "-s", DISK_SIZE, str(path)])
    _run(["mkfs.ext4", "-q", "-F", "-L", "lab-disk", str(path)], timeout=120)


# -- the keeper ----------------------------------------------------------------

class Keeper:
    """Runs a topology: CPU slots, namespace, switches, guests; control socket; teardown."""

    def __init__(self, d: Path, owner: int | None) -> None:
        self.d = d
        self.owner = owner
        self.state = load_state(d)
        self.uml = uml.find_uml()
        self.shim = uml.build_shim()
        self.guests: dict[str, subprocess.Popen[bytes]] = {}
        self.switches: list[subprocess.Popen[bytes]] = []
        self.tmp: dict[str, Path] = {}
        self.stack = contextlib.ExitStack()
        self.stopping = False

    # state
    def _set(self, **kw: Any) -> None:
        self.state.update(kw)
        save_state(self.d, self.state)

    def _host(self, name: str) -> dict[str, Any]:
        for h in self.state["hosts"]:
            if h["name"] == name:
                return h
        raise MachinesError(f"lab machines: no host {name!r} in {self.state['name']}")

    def _sock(self, seg: str) -> Path:
        return self.d / f"sw-{seg}.sock"

    # life cycle
    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        try:
            self._set(keeper=os.getpid(), phase="waiting for CPUs")
            # LVS_LAB_SHARED_CPUS=1 (development only): share the CPUs with other lab work instead
            # of waiting for every slot; the machines are slower but start at once.
            if os.environ.get("LVS_LAB_SHARED_CPUS") != "1":
                for cpu in sorted({h["cpu"] for h in self.state["hosts"]}):
                    self.stack.enter_context(uml.cpu_slot(cpu, timeout=CPU_WAIT_TIMEOUT))
            self._set(phase="starting", cpus_held_at=time.time())
            self._netns()
            self._start_switches()
            for h in self.state["hosts"]:
                self._boot(h)
            self._set(phase="running")
            self._serve()
        except Exception as exc:  # reported in the state file; `up` prints it
            self._set(phase="failed", error=f"{type(exc).__name__}: {exc}")
            return 1
        finally:
            self._teardown()
        return 0

    def _ns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.state["netns"], *argv]

    def _netns(self) -> None:
        ns = self.state["netns"]
        _run(["ip", "netns", "del", ns], check=False)
        _run(["ip", "netns", "add", ns])
        _run(self._ns(["ip", "link", "set", "lo", "up"]))
        _run(self._ns(["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]))
        _run(self._ns(["ip", "address", "add", f"{CONTROLLER_ADDR}/24", "dev", "tap0"]))
        _run(self._ns(["ip", "link", "set", "tap0", "up"]))

    def _spawn(self, argv: list[str], log: Path, env: dict[str, str] | None = None,
               cwd: str | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(self._ns(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, start_new_session=True, preexec_fn=_pdeathsig)

    def _start_switches(self) -> None:
        for seg in [*self.state["segments"], "mgmt"]:
            sock = self._sock(seg)
            sock.unlink(missing_ok=True)
            argv = ["uml_switch", "-unix", str(sock)] + (["-tap", "tap0"] if seg == "mgmt" else [])
            self.switches.append(self._spawn(argv, self.d / f"sw-{seg}.log"))
        deadline = time.monotonic() + 10
        while not all(self._sock(s).exists() for s in [*self.state["segments"], "mgmt"]):
            if time.monotonic() > deadline:
                raise MachinesError("lab machines: uml_switch did not create its sockets within 10 s")
            time.sleep(0.05)

    def _boot(self, h: dict[str, Any]) -> None:
        name = h["name"]
        old = self.guests.get(name)
        if old is not None and old.poll() is None:
            return
        mdir = self.d / name
        tmp = uml.SHM_DIR / f"{uml.SHM_PREFIX}{os.getpid()}-{name}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir(mode=0o700)
        if name in self.tmp:
            shutil.rmtree(self.tmp[name], ignore_errors=True)
        self.tmp[name] = tmp
        share = mdir / "share"
        init = share / ".machine-init.sh"
        shutil.copyfile(uml.LAB_DIR / "machine_init.sh", init)
        init.chmod(0o755)
        nics = [f"{link['ifname']}=daemon,{link['mac']},unix,{self._sock(link['segment'])}" for link in h["links"]]
        nics.append(f"{h['mgmt']['ifname']}=daemon,{h['mgmt']['mac']},unix,{self._sock('mgmt')}")
        argv = ["taskset", "-c", str(h["cpu"]), str(self.uml.binary), f"mem={h['mem']}", f"ubd0={mdir / 'disk.img'}",
                "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro", "con=null", "con0=null,fd:1",
                f"umid=m{os.getpid()}-{name}", f"uml_dir={tmp}", f"init={init}", f"LAB_SHARE_HOST={share}", *nics]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TMPDIR": str(tmp),
               "LVS_LAB_PDEATHSIG": str(os.getpid())}
        if self.shim is not None:
            env["LD_PRELOAD"] = str(self.shim)
        for p in (share, mdir / "disk.img"):
            uml._check_path(p, "machine path")
        self.guests[name] = self._spawn(argv, mdir / "console.log", env=env, cwd=str(tmp))
        h["pid"] = self.guests[name].pid
        h["powered"] = True
        h["started_at"] = time.time()
        save_state(self.d, self.state)

    def _poweroff(self, h: dict[str, Any]) -> None:
        proc = self.guests.pop(h["name"], None)
        if proc is not None:
            uml._kill_group(proc)  # type: ignore[arg-type]
        h["powered"] = False
        h["pid"] = None
        save_state(self.d, self.state)

    def _serve(self) -> None:
        path = self.d / CTL_SOCK
        path.unlink(missing_ok=True)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(path))
        srv.listen(8)
        srv.settimeout(0.5)
        with srv:
            while not self.stopping:
                if self.owner and not uml._pid_alive(self.owner):
                    self._set(note=f"owner {self.owner} is gone: tearing down")
                    return
                for h in self.state["hosts"]:  # a guest that powered itself off
                    proc = self.guests.get(h["name"])
                    if proc is not None and proc.poll() is not None:
                        self.guests.pop(h["name"])
                        h["powered"], h["pid"] = False, None
                        save_state(self.d, self.state)
                try:
                    conn = srv.accept()[0]
                except socket.timeout:
                    continue
                with conn:
                    conn.settimeout(10)
                    try:
                        req = json.loads(_recv_line(conn))
                        reply = self._handle(req)
                    except Exception as exc:  # the client prints it
                        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    conn.sendall((json.dumps(reply) + "\n").encode())
                    if reply.get("bye"):
                        return

    def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "status":
            return {"ok": True, "state": self.state}
        if op == "down":
            return {"ok": True, "bye": True}
        if op in ("poweroff", "boot"):
            for name in req.get("hosts", []):
                h = self._host(name)
                self._poweroff(h) if op == "poweroff" else self._boot(h)
            return {"ok": True}
        raise MachinesError(f"unknown request {op!r}")

    def _teardown(self) -> None:
        for h in self.state["hosts"]:
            self._poweroff(h)
        for proc in self.switches:
            uml._kill_group(proc)  # type: ignore[arg-type]
        _kill_netns(self.state["netns"])
        for tmp in self.tmp.values():
            shutil.rmtree(tmp, ignore_errors=True)
        (self.d / CTL_SOCK).unlink(missing_ok=True)
        self.stack.close()
        self.state.update(phase="down", keeper=None)
        save_state(self.d, self.state)


def _pdeathsig() -> None:
    """In a child: die with the keeper (SIGKILL when it goes), whatever it execs."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _recv_line(conn: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.decode()


# -- client side ---------------------------------------------------------------

def request(d: Path, req: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(d / CTL_SOCK))
    except OSError as exc:
        raise MachinesError(f"lab machines: the keeper of {d.name} does not answer ({exc})") from None
    with s:
        s.sendall((json.dumps(req) + "\n").encode())
        reply = json.loads(_recv_line(s) or "{}")
    if not reply.get("ok"):
        raise MachinesError(f"lab machines: {d.name}: {req.get('op')}: {reply.get('error', 'no answer')}")
    return reply


def ssh_config(d: Path, state: dict[str, Any]) -> str:
    relay = uml.LAB_DIR / "ssh_relay.py"
    lines = [f"# lab machines {state['name']}: ssh -F {d / 'ssh_config'} HOST"]
    for h in state["hosts"]:
        lines += [f"Host {h['name']} {h['mgmt']['address']}", f"    HostName {h['mgmt']['address']}"]
    lines += ["Host *", "    User root", f"    IdentityFile {d / 'id_ed25519'}", "    IdentitiesOnly yes",
              f"    UserKnownHostsFile {d / 'known_hosts'}", "    StrictHostKeyChecking yes",
              f"    ProxyCommand ip netns exec {state['netns']} /usr/bin/python3 {relay} %h %p",
              "    ConnectTimeout 10", "    ControlMaster auto", f"    ControlPath {d}/cm-%C", "    ControlPersist 60",
              "    ServerAliveInterval 5", "    ServerAliveCountMax 6",
              "    LogLevel ERROR", ""]
    return "\n".join(lines)


def ssh_argv(d: Path, host: str, command: str, connect_timeout: int = 10) -> list[str]:
    return ["ssh", "-F", str(d / "ssh_config"), "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}",
            host, command]


def ssh(d: Path, host: str, command: str, timeout: float = 60.0, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(ssh_argv(d, host, command), capture_output=True, text=True, timeout=timeout,
                          check=False, input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise MachinesError(f"lab machines: {host}: {command!r} failed (rc {proc.returncode}): "
                            f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def wait_running(d: Path, hosts: list[str], timeout: float = BOOT_TIMEOUT) -> dict[str, float]:
    """Wait until each host answers ssh and systemd reports running; seconds from power-on each."""
    # The boot is timed from when the keeper holds every CPU: other lab work on the machine may
    # hold slots first (bounded by the keeper's own wait for them).
    t0 = time.monotonic()
    while time.monotonic() - t0 < CPU_WAIT_TIMEOUT:
        st = load_state(d)
        keeper = st.get("keeper")
        waiting = st.get("phase") == "waiting for CPUs" and keeper and uml._pid_alive(int(keeper))
        if not (waiting or (st.get("phase") == "created" and time.monotonic() - t0 < 60)):
            break
        time.sleep(1.0)
    state = load_state(d)
    started = {h["name"]: h.get("started_at") or time.time() for h in state["hosts"]}
    deadline = time.monotonic() + timeout
    pending = list(hosts)
    took: dict[str, float] = {}
    last = ""
    while pending:
        for name in list(pending):
            try:
                proc = ssh(d, name, "systemctl is-system-running --wait", timeout=max(5.0, min(60.0, deadline - time.monotonic())),
                           check=False)
            except subprocess.TimeoutExpired:
                proc = None
            if proc is not None and proc.returncode == 0 and proc.stdout.strip() == "running":
                took[name] = round(time.time() - started[name], 1)
                pending.remove(name)
            elif proc is not None and proc.stdout.strip() in ("degraded", "maintenance"):
                failed = ssh(d, name, "systemctl --failed --plain --no-legend", check=False).stdout.strip()
                raise MachinesError(f"lab machines: {name} booted {proc.stdout.strip()}: failed units: {failed}")
            elif proc is not None:
                last = f"{name}: {(proc.stdout + proc.stderr).strip()[-300:]}"
        if pending:
            st = load_state(d)
            if st.get("phase") == "failed":
                raise MachinesError(f"lab machines: {d.name}: {st.get('error')}")
            if time.monotonic() > deadline:
                raise MachinesError(f"lab machines: {', '.join(pending)} not running after {timeout:.0f} s ({last})")
            time.sleep(1.0)
    return took


def up(name: str, spec: dict[str, Any], owner: int | None, timeout: float = BOOT_TIMEOUT) -> dict[str, Any]:
    """Create (or reuse the disks of) a topology, start its keeper, wait until every host runs."""
    uml.prune_stale(max_age_s=0.0)
    prune_machines()
    d = lab_dir(name)
    if d.is_dir():
        try:
            old = load_state(d)
        except MachinesError:
            old = {}
        if old.get("keeper") and uml._pid_alive(int(old["keeper"])):
            raise MachinesError(f"lab machines: {name} is already running (keeper {old['keeper']}); "
                                f"python -m lab.machines down --name {name}")
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / uml.OWNER_FILE).write_text(f"{owner or os.getpid()}\n")
    (d / SPEC_FILE).write_text(json.dumps(spec, indent=1))
    topo = plan(name, spec)
    key = d / "id_ed25519"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-controller@{name}", "-f", str(key)])
    pub = (d / "id_ed25519.pub").read_text()
    known = []
    for h in topo["hosts"]:
        seed = build_seed(d, topo, h, pub)
        hostkey = (seed / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
        known.append(f"{h['name']},{h['mgmt']['address']} {hostkey[0]} {hostkey[1]}")
        make_disk(d / h["name"] / "disk.img")
    (d / "known_hosts").write_text("\n".join(known) + "\n")
    (d / "ssh_config").write_text(ssh_config(d, topo))
    topo.update(phase="created", keeper=None, owner=owner)
    save_state(d, topo)
    t0 = time.time()
    log = open(d / "keeper.log", "ab")
    subprocess.run([sys.executable, "-m", "lab.machines", "keeper", "--name", name] + (["--owner", str(owner)] if owner else []),
                   cwd=str(uml.REPO_ROOT), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                   start_new_session=True, env=dict(os.environ, PYTHONPATH=str(uml.REPO_ROOT)), check=False, timeout=60)
    log.close()
    try:
        took = wait_running(d, [h["name"] for h in topo["hosts"]], timeout)
    except BaseException:
        down(name, keep_disks=True)
        raise
    state = load_state(d)
    state["boot_s"] = {"each": took, "all": round(time.time() - t0, 1),
                       "waited_for_cpus": round(state.get("cpus_held_at", t0) - t0, 1)}
    save_state(d, state)
    return summary(d)


def summary(d: Path) -> dict[str, Any]:
    state = load_state(d)
    return {"name": state["name"], "dir": str(d), "ssh_config": str(d / "ssh_config"),
            "inventory": str(d / "inventory.yml"), "boot_s": state.get("boot_s"),
            "hosts": {h["name"]: {"mgmt": h["mgmt"]["address"], "powered": h.get("powered"),
                                  "boots": boots(d, h["name"])} for h in state["hosts"]}}


def boots(d: Path, host: str) -> int:
    """How many times the machine booted (its init appends one line per boot to its share)."""
    try:
        return len((d / host / "share" / "boots.log").read_text().splitlines())
    except OSError:
        return 0


def inventory(d: Path) -> str:
    """An Ansible inventory of the machines (ssh through the topology's namespace)."""
    state = load_state(d)
    ssh_args = f"-F {d / 'ssh_config'}"
    lines = ["# lab machines " + state["name"] + " (python -m lab.machines): ssh through its private namespace.",
             "# Use it beside the topology's own inventory: -i playbooks/inventories/NAME -i THIS_FILE",
             "all:", "  vars:", "    ansible_connection: ssh", "    ansible_user: root",
             "    ansible_python_interpreter: /usr/bin/python3", f"    ansible_ssh_common_args: {json.dumps(ssh_args)}",
             "    ansible_pipelining: true",
             "    # No network in the lab: the packages are on the machines' image already.",
             "    director_manage_packages: false",
             "    keepalived_packages: []", "  hosts:"]
    for h in state["hosts"]:
        lines += [f"    {h['name']}:", f"      ansible_ssh_host: {h['mgmt']['address']}"]
    return "\n".join(lines) + "\n"


def down(name: str, keep_disks: bool = False) -> None:
    d = lab_dir(name)
    if not d.is_dir():
        return
    try:
        state = load_state(d)
    except MachinesError:
        state = {}
    keeper = state.get("keeper")
    if keeper and uml._pid_alive(int(keeper)):
        try:
            request(d, {"op": "down"}, timeout=30)
        except MachinesError:
            os.kill(int(keeper), signal.SIGTERM)
        deadline = time.monotonic() + 60
        while uml._pid_alive(int(keeper)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if uml._pid_alive(int(keeper)):
            os.kill(int(keeper), signal.SIGKILL)
    _cleanup_dead(d, state)
    if not keep_disks:
        shutil.rmtree(d, ignore_errors=True)


def _cleanup_dead(d: Path, state: dict[str, Any]) -> None:
    """What a keeper that died without tearing down left: its namespace, guests, temp dirs."""
    for pid in uml.orphan_guest_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _kill_netns(state.get("netns") or netns_of(d.name))


def _kill_netns(ns: str) -> None:
    """End every process left in the topology's namespace (ssh relays, a stray switch), then delete it."""
    if not Path("/run/netns", ns).exists():
        return
    for _attempt in range(20):
        pids = [int(p) for p in _run(["ip", "netns", "pids", ns], check=False).stdout.split() if p.isdigit()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    _run(["ip", "netns", "del", ns], check=False)


def prune_machines() -> list[str]:
    """Clean up topologies whose keeper is gone (a killed test run); returns their names."""
    done = []
    if not MACHINES_DIR.is_dir():
        return done
    for d in MACHINES_DIR.iterdir():
        if not d.is_dir():
            continue
        try:
            state = load_state(d)
        except MachinesError:
            continue
        keeper = state.get("keeper")
        if keeper and not uml._pid_alive(int(keeper)):
            _cleanup_dead(d, state)
            state.update(phase="down", keeper=None)
            save_state(d, state)
            done.append(d.name)
    # Namespaces of topologies that no longer exist at all.
    for ns in Path("/run/netns").glob(f"{NETNS_PREFIX}*") if Path("/run/netns").is_dir() else []:
        sd = MACHINES_DIR / ns.name[len(NETNS_PREFIX):]
        try:
            keeper = load_state(sd).get("keeper")
        except MachinesError:
            keeper = None
        if not (keeper and uml._pid_alive(int(keeper))):
            _kill_netns(ns.name)
            done.append(ns.name)
    return done


# -- snapshot: what the machines hold, to prove that check mode changed nothing --------

def snapshot(d: Path) -> dict[str, Any]:
    state = load_state(d)
    script = (uml.LAB_DIR / "machine_snapshot.py").read_text()

    def one(name: str) -> dict[str, Any]:
        return json.loads(ssh(d, name, "python3 -", input=script, timeout=120).stdout)

    # Every machine at once: each waits mostly on its own guest, and a snapshot is read-only.
    names = [h["name"] for h in state["hosts"]]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        return dict(zip(names, pool.map(one, names)))


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = []
    for host in sorted(set(old) | set(new)):
        a, b = old.get(host, {}), new.get(host, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                    ka, kb = a[key], b[key]
                    changed = sorted(k for k in set(ka) | set(kb) if ka.get(k) != kb.get(k))
                    diffs.append(f"{host}: {key}: {', '.join(changed[:20])}")
                else:
                    diffs.append(f"{host}: {key}: {a.get(key)!r} -> {b.get(key)!r}"[:2000])
    return diffs


def scenario_spec(scenario: str) -> dict[str, Any]:
    """The spec of molecule scenario SCENARIO (its platforms; the lab's application scripts)."""
    import yaml  # pylint: disable=import-outside-toplevel

    path = uml.REPO_ROOT / "molecule" / scenario / "molecule.yml"
    try:
        platforms = yaml.safe_load(path.read_text())["platforms"]
    except (OSError, KeyError, TypeError) as exc:
        raise MachinesError(f"lab machines: no platforms in {path} ({exc})") from None
    files = sorted(str(p.relative_to(uml.REPO_ROOT)) for p in (uml.REPO_ROOT / "molecule/shared/files").glob("*.py"))
    return {"hosts": platforms, "files": files}


# -- command line ----------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.machines", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd in ("up", "status", "poweroff", "boot", "down", "keeper", "snapshot", "compare", "inventory", "ssh"):
        s = sub.add_parser(cmd)
        s.add_argument("--name", required=True)
        if cmd in ("up", "keeper"):
            s.add_argument("--owner", type=int, default=None, help="tear down when this process dies")
        if cmd == "up":
            s.add_argument("--timeout", type=float, default=BOOT_TIMEOUT)
            s.add_argument("--scenario", default=None, help="boot molecule/SCENARIO's platforms (else: spec on stdin)")
        if cmd in ("poweroff", "boot"):
            s.add_argument("hosts", nargs="+")
        if cmd == "down":
            s.add_argument("--keep-disks", action="store_true")
        if cmd == "snapshot":
            s.add_argument("--out", required=True)
        if cmd == "compare":
            s.add_argument("--with", dest="other", required=True)
            s.add_argument("--consume", action="store_true")
            s.add_argument("--missing-ok", action="store_true")
        if cmd == "ssh":
            s.add_argument("host")
            s.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    try:
        if args.cmd == "keeper":
            # A daemon: the process that started it (`up`) reaps this parent at once, and the
            # keeper itself belongs to no one's process tree but init's.
            if os.fork():
                os._exit(0)
            return Keeper(lab_dir(args.name), args.owner).run()
        d = lab_dir(args.name)
        if args.cmd == "up":
            spec = scenario_spec(args.scenario) if args.scenario else json.load(sys.stdin)
            result = up(args.name, spec, args.owner, args.timeout)
            (d / "inventory.yml").write_text(inventory(d))
            print(json.dumps(result, indent=1))
            if args.scenario:
                print(f"\nssh:      ssh -F {d / 'ssh_config'} HOST\n"
                      f"playbook: ansible-playbook -i playbooks/inventories/{args.scenario} -i {d / 'inventory.yml'} "
                      f"playbooks/site.yml\nstop:     make lab-down SCENARIO={args.scenario}", file=sys.stderr)
        elif args.cmd == "status":
            print(json.dumps(summary(d), indent=1))
        elif args.cmd == "inventory":
            print(inventory(d), end="")
        elif args.cmd == "poweroff":
            request(d, {"op": "poweroff", "hosts": args.hosts})
        elif args.cmd == "boot":
            request(d, {"op": "boot", "hosts": args.hosts})
            print(json.dumps(wait_running(d, args.hosts)))
        elif args.cmd == "down":
            down(args.name, args.keep_disks)
        elif args.cmd == "snapshot":
            Path(args.out).write_text(json.dumps(snapshot(d), indent=1, sort_keys=True))
        elif args.cmd == "compare":
            path = Path(args.other)
            if not path.exists() and args.missing_ok:
                print("no snapshot to compare with")
                return 0
            diffs = compare(json.loads(path.read_text()), snapshot(d))
            if args.consume:
                path.unlink()
            if diffs:
                print("hosts changed since the snapshot:\n" + "\n".join(diffs))
                return 1
            print("no host changed since the snapshot")
        elif args.cmd == "ssh":
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            return subprocess.call(ssh_argv(d, args.host, shlex.join(cmd)))
    except MachinesError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
