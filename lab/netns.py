"""Hosts as network namespaces inside a lab guest.

Everything here refuses to run outside a lab guest (``LVS_LAB_GUEST=1``): it
creates namespaces, bridges and veth pairs in the kernel it runs on.  Bridges
live in the guest's root namespace and have no uplink, so the traffic of a
topology never leaves the guest.

Every command is bounded by a timeout; every process started is tracked and
killed by PID on cleanup; every namespace and bridge created is deleted.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from typing import Iterable, Sequence, Union

Cmd = Union[str, Sequence[str]]
Addrs = Union[str, Sequence[str], None]

HTTP_SERVER = r'''
import socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

body, port, bind = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(HTTPServer):
    address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    allow_reuse_address = True

    def server_bind(self):
        # Not HTTPServer.server_bind: it resolves the host name (a DNS query).
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = bind, port


srv = Server((bind, port), Handler)
print("ready", flush=True)
srv.serve_forever()
'''


class NetnsError(RuntimeError):
    """A lab command failed (message names the command and its stderr)."""


def in_guest() -> bool:
    return os.environ.get("LVS_LAB_GUEST") == "1"


def require_guest() -> None:
    if not in_guest():
        raise NetnsError("lab.netns only runs inside a lab guest (LVS_LAB_GUEST=1); "
                         "mark the test with @pytest.mark.lab or use python -m lab run")


def short_id() -> str:
    return uuid.uuid4().hex[:6]


def run(cmd: Cmd, *, check: bool = True, timeout: float = 30.0, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command (a string goes through ``sh -c``), capture text output, bounded by ``timeout``."""
    argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"timed out after {timeout} s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise NetnsError(f"exit {proc.returncode}: {' '.join(argv)}\n{proc.stderr.strip()}")
    return proc


def ip_batch(lines: Iterable[str], ns: str | None = None, timeout: float = 30.0) -> None:
    """Apply many ``ip`` commands with one process (``ip [-n NS] -batch -``)."""
    text = "\n".join(lines) + "\n"
    run(["ip", *(["-n", ns] if ns else []), "-batch", "-"], input=text, timeout=timeout)


def load_ipvs() -> None:
    """modprobe ip_vs (idempotent)."""
    require_guest()
    if not os.path.exists("/proc/net/ip_vs"):
        run(["modprobe", "ip_vs"])


def add_netns(name: str) -> str:
    """Create namespace ``name`` with lo up."""
    require_guest()
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return name


def netns_pids(name: str) -> list[int]:
    proc = run(["ip", "netns", "pids", name], check=False, timeout=10)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def del_netns(name: str) -> None:
    """Kill what still runs in namespace ``name`` (by PID) and delete it."""
    for pid in netns_pids(name):
        _kill_pid(pid)
    run(["ip", "netns", "del", name], check=False, timeout=10)


def _kill_pid(pid: int, grace: float = 2.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _stop(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class NetnsFactory:
    """``netns()`` makes a fresh namespace ``t<short-id>`` with lo up; ``cleanup()`` deletes them all."""

    def __init__(self, prefix: str = "t") -> None:
        require_guest()
        self.prefix = prefix
        self.created: list[str] = []

    def __call__(self) -> str:
        name = add_netns(f"{self.prefix}{short_id()}")
        self.created.append(name)
        return name

    def cleanup(self) -> None:
        while self.created:
            del_netns(self.created.pop())


class Host:
    """One "machine": a network namespace joined to bridges by veth pairs (eth0, eth1, ...)."""

    def __init__(self, topo: Topology, name: str, ns: str) -> None:
        self.topo = topo
        self.name = name
        self.ns = ns
        self.ifaces: dict[str, str] = {}
        self.addrs: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ns={self.ns!r}, addrs={self.addrs!r})"

    def argv(self, cmd: Cmd) -> list[str]:
        inner = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return ["ip", "netns", "exec", self.ns, *inner]

    def run(self, cmd: Cmd, check: bool = True, timeout: float = 30.0,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` in this host's namespace (``ip netns exec``)."""
        return run(self.argv(cmd), check=check, timeout=timeout, input=input)

    def spawn(self, argv: Cmd, **popen: object) -> subprocess.Popen[bytes]:
        """Start a background process in this namespace; it is killed (by PID) at cleanup."""
        popen.setdefault("stdin", subprocess.DEVNULL)
        popen.setdefault("stdout", subprocess.DEVNULL)
        popen.setdefault("stderr", subprocess.DEVNULL)
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.argv(argv), **popen)  # type: ignore[call-overload]
        self.topo.procs.append(proc)
        return proc

    def mac(self, ifname: str = "eth0") -> str:
        out = run(["ip", "-n", self.ns, "-j", "link", "show", "dev", ifname]).stdout
        return str(json.loads(out)[0]["address"])

    def sysctl(self, key: str, value: object) -> None:
        self.run(["sysctl", "-qw", f"{key}={value}"])

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip -n NS ARGS...``"""
        return run(["ip", "-n", self.ns, *args], check=check)

    def curl(self, url: str, max_time: float = 2.0, check: bool = True) -> str:
        """GET ``url`` from this host; the body, stripped."""
        return self.run(["curl", "-sS", "-g", "--max-time", str(max_time), url], check=check,
                        timeout=max_time + 10).stdout.strip()


class Topology:
    """Builder for bridges and namespace hosts; removes everything it made on ``cleanup()``."""

    def __init__(self) -> None:
        require_guest()
        self.id = short_id()
        self.bridges: dict[str, str] = {}
        self.hosts: dict[str, Host] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self._links = 0

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def bridge(self, name: str) -> str:
        """A bridge in the guest's root namespace (no uplink); returns its device name."""
        if name in self.bridges:
            raise NetnsError(f"bridge {name!r} already exists in this topology")
        dev = f"b{self.id}{name}"[:15]
        if dev in self.bridges.values():
            raise NetnsError(f"bridge device name {dev!r} for {name!r} collides; use shorter names")
        ip_batch([f"link add name {dev} type bridge", f"link set {dev} up"])
        self.bridges[name] = dev
        return dev

    def _bridge_dev(self, bridge: str) -> str:
        if bridge in self.bridges:
            return self.bridges[bridge]
        if bridge in self.bridges.values():
            return bridge
        raise NetnsError(f"unknown bridge {bridge!r}; create it with topology.bridge() first")

    def host(self, name: str, links: Sequence[tuple[str, Addrs]] = (), gateway: str | None = None,
             gateway6: str | None = None, forwarding: bool = False) -> Host:
        """A namespace host with one veth per link: ``links=[(bridge, "10.0.0.1/24"), (bridge2, ["2001:db8::1/64"])]``.

        IPv6 addresses are added with ``nodad``.  ``gateway`` may be IPv4 or IPv6;
        ``gateway6`` adds a second, IPv6 default route.  ``forwarding`` turns
        routing on (IPv4 and IPv6).
        """
        if name in self.hosts:
            raise NetnsError(f"host {name!r} already exists in this topology")
        ns = f"t{self.id}-{name}"
        add_netns(ns)
        host = Host(self, name, ns)
        self.hosts[name] = host
        root_cmds: list[str] = []
        ns_cmds: list[str] = []
        for index, (bridge, addrs) in enumerate(links):
            dev = self._bridge_dev(bridge)
            self._links += 1
            peer = f"v{self.id}{self._links}"
            ifname = f"eth{index}"
            root_cmds += [f"link add {peer} type veth peer name {ifname} netns {ns}",
                          f"link set {peer} master {dev} up"]
            wanted = [addrs] if isinstance(addrs, str) else list(addrs or [])
            for addr in wanted:
                ns_cmds.append(f"addr add {addr} dev {ifname}" + (" nodad" if ":" in addr else ""))
            ns_cmds.append(f"link set {ifname} up")
            host.ifaces[ifname] = dev
            host.addrs[ifname] = wanted
        for gw in (gateway, gateway6):
            if gw:
                ns_cmds.append(f"route add default via {gw}")
        if root_cmds:
            ip_batch(root_cmds)
        if ns_cmds:
            ip_batch(ns_cmds, ns=ns)
        if forwarding:
            host.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        return host

    def http_server(self, host: Host, port: int = 80, body: str | None = None, bind: str = "::",
                    timeout: float = 15.0) -> subprocess.Popen[bytes]:
        """Serve ``body`` (default: the host's name) over HTTP on ``port``; returns once it listens."""
        proc = host.spawn([sys.executable, "-c", HTTP_SERVER, body if body is not None else host.name, str(port), bind],
                          stdout=subprocess.PIPE)
        assert proc.stdout is not None
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if sel.select(timeout=timeout):
                line = proc.stdout.readline()
        if line.strip() != b"ready":
            _stop(proc)
            raise NetnsError(f"HTTP server on {host.name}:{port} did not start within {timeout} s (exit {proc.returncode})")
        return proc

    def cleanup(self) -> None:
        """Kill tracked processes, delete namespaces and bridges (veths go with their namespaces)."""
        while self.procs:
            _stop(self.procs.pop())
        for host in list(self.hosts.values()):
            del_netns(host.ns)
        self.hosts.clear()
        for dev in self.bridges.values():
            run(["ip", "link", "del", dev], check=False, timeout=10)
        self.bridges.clear()


class Ipvsadm:
    """Read (and, for lab self-tests only, change) the IPVS table of one namespace with ipvsadm."""

    def __init__(self, ns: str | Host | None = None) -> None:
        require_guest()
        self.ns = ns.ns if isinstance(ns, Host) else ns

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ipvsadm", *args]
        if self.ns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        return run(argv, check=check)

    def save(self) -> str:
        """``ipvsadm -Sn``"""
        return self.run("-Sn").stdout

    def list(self) -> str:
        """``ipvsadm -Ln``"""
        return self.run("-Ln").stdout

    def rules(self) -> list[str]:
        """The non-empty lines of ``ipvsadm -Sn``."""
        return [line for line in self.save().splitlines() if line.strip()]
