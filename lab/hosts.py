"""Lab *machines*: a network namespace plus a private mount namespace per host, with a boot.

``lab.netns`` hosts share the guest's filesystem.  Roles write /etc (sysctl.d, ipvsadm.rules,
systemd units), so each host made here also gets its own mount namespace:

- ``/etc``: an overlay whose lower layer is the guest's /etc and whose upper layer is the
  host's "disk" (kept across a reboot, dropped at destroy);
- ``/run``, ``/tmp``: fresh tmpfs (emptied by a reboot, like a real machine's);
- ``/sys``: mounted from inside the host's network namespace (its own net devices).

Everything else (/usr, the repository, the venv) is the guest's root, shared read-mostly.

A **reboot** is simulated honestly, as a sequence of what a Debian machine does at boot:
the host's network namespace is destroyed (addresses, routes, IPVS table, iptables rules,
every net.* sysctl are gone) and recreated with its cabling and base addresses (what the
distribution's own network configuration would bring up; the roles do not manage it); /run
and /tmp are emptied; /etc is kept.  Then, inside the host:

1. ``/lib/systemd/systemd-sysctl`` (systemd-sysctl.service: /etc/sysctl.d, /run/sysctl.d,
   /usr/lib/sysctl.d);
2. every systemd unit enabled *on this host* (a ``*.wants/`` symlink under
   /etc/systemd/system created after the image, i.e. in the overlay's upper layer): its
   ``ExecStartPre=`` and ``ExecStart=`` lines, in name order (only ``Type=oneshot`` units
   are supported: that is what the roles install);
3. the SysV init scripts listed in the spec's ``sysv`` (default ``[ipvsadm]``) that are
   enabled in /etc/rc2.d: ``/etc/init.d/NAME start`` (what systemd-sysv-generator runs);
4. for every network device that appeared during 2-3 (e.g. tunl0), what udev's
   99-systemd.rules runs: ``systemd-sysctl --prefix=/net/ipv4/conf/DEV ...``;
5. the host's lab ``services`` (the application, e.g. an HTTP server), restarted.

No systemd runs as PID 1 in the lab: ``systemctl`` calls that need a running manager are
not available, and units of another type than oneshot are refused with a clear error.

Command line (inside a lab guest only)::

    python -m lab.hosts create  --state DIR --lab NAME < spec.json
    python -m lab.hosts reboot  --state DIR [HOST...]
    python -m lab.hosts exec    --state DIR HOST -- CMD ARGS...
    python -m lab.hosts snapshot --state DIR --out FILE
    python -m lab.hosts compare  --state DIR --with FILE [--consume]
    python -m lab.hosts destroy --state DIR

The spec is JSON: ``{"hosts": [{"name": "director", "links": [{"segment": "lan",
"addresses": ["192.0.2.1/24"]}], "gateway": "192.0.2.254", "forwarding": false,
"services": [{"name": "http", "argv": ["python3", "..."], "wait_port": 80}],
"setup": [["ln", "-sfn", "/usr/sbin/iptables-legacy", "/etc/alternatives/iptables"]]}],
"sysv": ["ipvsadm"]}``.  ``setup`` commands run once inside the new host (its installation:
what they write to /etc stays across reboots); ``services`` run at creation and after every
boot, and are killed by PID.
Molecule's ``platforms`` list (molecule/shared/create.yml) is passed as ``hosts``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lab import netns as labnet

RUN_ROOT = Path("/run/lvs-lab")
REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "lab-hosts.json"
SYSCTL = "/lib/systemd/systemd-sysctl"
NSENTER = "nsenter"
# The sysctl subtrees a snapshot records (per network namespace).
SNAPSHOT_SYSCTL = ("net/ipv4/ip_forward", "net/ipv4/conf", "net/ipv4/vs", "net/ipv6/conf")
# Values that change on their own or say nothing about configuration.
SNAPSHOT_SYSCTL_SKIP = ("stable_secret",)


_BUILTIN_CHAIN = re.compile(r"^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ACCEPT ")


class LabHostsError(RuntimeError):
    """A lab hosts operation failed; the message says which host and command."""


# -- state -------------------------------------------------------------------

def _load(state_dir: Path) -> dict[str, Any]:
    path = state_dir / STATE_FILE
    try:
        return json.loads(path.read_text())
    except OSError:
        raise LabHostsError(f"no lab hosts in {state_dir} (run create first)") from None


def _save(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(state_dir / STATE_FILE)


def netns_name(lab: str, host: str) -> str:
    return f"{lab}-{host}"


def mount_ns_path(lab: str, host: str) -> Path:
    return RUN_ROOT / lab / host / "mnt"


# -- building blocks ---------------------------------------------------------

def _ensure_private_dir(path: Path) -> None:
    """A directory that is a private mount point (needed to bind-mount namespace files on it)."""
    path.mkdir(parents=True, exist_ok=True)
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    if not any(line.split()[4] == str(path) for line in mounts):
        labnet.run(["mount", "--bind", str(path), str(path)])
    labnet.run(["mount", "--make-private", str(path)])


def _nsenter(host: dict[str, Any], argv: list[str]) -> list[str]:
    return [NSENTER, f"--net=/run/netns/{host['netns']}", f"--mount={host['mnt']}", "--", *argv]


def host_run(host: dict[str, Any], argv: list[str], check: bool = True, timeout: float = 60.0,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the host (its network and mount namespaces)."""
    return labnet.run(_nsenter(host, argv), check=check, timeout=timeout, input=input)


def _wire(state: dict[str, Any], host: dict[str, Any]) -> None:
    """Create the host's network namespace, its veths to the bridges, base addresses and routes."""
    ns = host["netns"]
    labnet.add_netns(ns)
    root_cmds, ns_cmds = [], []
    for index, link in enumerate(host.get("links", [])):
        bridge = state["bridges"][link["segment"]]
        peer = f"v{state['id']}{host['index']}{index}"[:15]
        ifname = link.get("ifname") or f"eth{index}"
        root_cmds += [f"link add {peer} type veth peer name {ifname} netns {ns}", f"link set {peer} master {bridge} up"]
        if link.get("mac"):
            ns_cmds.append(f"link set {ifname} address {link['mac']}")
        for addr in link.get("addresses", []):
            ns_cmds.append(f"addr add {addr} dev {ifname}" + (" nodad" if ":" in addr else ""))
        ns_cmds.append(f"link set {ifname} up")
    for gw in (host.get("gateway"), host.get("gateway6")):
        if gw:
            ns_cmds.append(f"route add default via {gw}")
    if root_cmds:
        labnet.ip_batch(root_cmds)
    if ns_cmds:
        labnet.ip_batch(ns_cmds, ns=ns)
    if host.get("forwarding"):
        labnet.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                    "net.ipv6.conf.all.forwarding=1"])


def _record_macs(host: dict[str, Any]) -> None:
    """Remember each interface's MAC: a rebooted machine keeps its hardware addresses."""
    host["links"] = [dict(link) for link in host.get("links", [])]
    for index, link in enumerate(host["links"]):
        ifname = link.get("ifname") or f"eth{index}"
        out = labnet.run(["ip", "-n", host["netns"], "-j", "link", "show", "dev", ifname]).stdout
        link.setdefault("mac", json.loads(out)[0]["address"])


def _mount_ns(host: dict[str, Any]) -> None:
    """The host's mount namespace (bound on host['mnt']): /etc overlay on its disk, fresh /run and /tmp."""
    disk = Path(host["disk"])
    for sub in ("upper", "work"):
        (disk / sub).mkdir(parents=True, exist_ok=True)
    mnt = Path(host["mnt"])
    mnt.touch()
    # A repository under /tmp or /run (a CI clone, say) must stay visible under the fresh
    # tmpfs: hold it on a bind mount, then move that mount back to its path.
    repo = str(REPO_ROOT)
    keep = repo.startswith(("/tmp/", "/run/"))
    hold = f"/var/tmp/lvs-lab-hold-{host['netns']}"
    script = (
        "set -e\n"
        # sysfs shows the network devices of the namespace that mounts it.
        "umount -l /sys\n"
        "mount -t sysfs -o nosuid,nodev,noexec sysfs /sys\n"
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={disk}/upper,workdir={disk}/work /etc\n"
        + (f"mkdir -p {shlex.quote(hold)}\nmount --bind {shlex.quote(repo)} {shlex.quote(hold)}\n" if keep else "")
        + "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run\n"
        "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp\n"
        + (f"mkdir -p {shlex.quote(repo)}\nmount --move {shlex.quote(hold)} {shlex.quote(repo)}\n" if keep else "")
        + "mkdir -p /run/lock /run/sysctl.d\n"
    )
    # unshare (from the guest's root mount namespace, so that the namespace file is bound
    # where everyone sees it) then, inside, enter the network namespace to mount its /sys.
    labnet.run(["unshare", f"--mount={mnt}", "--propagation", "private",
                NSENTER, f"--net=/run/netns/{host['netns']}", "--", "sh", "-c", script])


def _unmount_ns(host: dict[str, Any]) -> None:
    labnet.run(["umount", host["mnt"]], check=False, timeout=10)


def _links(host: dict[str, Any]) -> set[str]:
    out = labnet.run(["ip", "-n", host["netns"], "-j", "link", "show"]).stdout
    return {str(link["ifname"]) for link in json.loads(out or "[]")}


def _start_services(state_dir: Path, host: dict[str, Any]) -> None:
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    host["pids"] = []
    for svc in host.get("services", []):
        log = open(logs / f"{host['name']}-{svc['name']}.log", "ab")  # noqa: SIM115 - handed to the child
        # Entering a mount namespace resets the working directory: keep ours (relative paths).
        argv = _nsenter(host, list(svc["argv"]))
        argv.insert(argv.index("--"), f"--wd={os.getcwd()}")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        host["pids"].append(proc.pid)
        wait = svc.get("wait_port")
        if wait:
            _wait_listen(host, int(wait), proc)


def _wait_listen(host: dict[str, Any], port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabHostsError(f"{host['name']}: service exited with {proc.returncode} before listening on {port}")
        out = host_run(host, ["ss", "-Hltn", f"sport = :{port}"], check=False).stdout
        if out.strip():
            return
        time.sleep(0.2)
    raise LabHostsError(f"{host['name']}: nothing listens on port {port} after {timeout} s")


def _stop_services(host: dict[str, Any]) -> None:
    for pid in host.get("pids", []):
        _kill(pid)
    host["pids"] = []


def _gone(pid: int) -> bool:
    """True when ``pid`` has exited (reaped, or a zombie waiting for a parent that is not us)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _kill(pid: int, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only PIDs this lab started."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _gone(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- boot --------------------------------------------------------------------

def _unit_exec_lines(text: str, name: str) -> list[tuple[bool, list[str]]]:
    """ExecStartPre= and ExecStart= of a oneshot unit, as (ignore_failure, argv)."""
    section, service_type, lines = "", "simple", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section != "[Service]" or "=" not in line:
            continue
        key, value = (p.strip() for p in line.split("=", 1))
        if key == "Type":
            service_type = value
        elif key in ("ExecStartPre", "ExecStart") and value:
            ignore = False
            while value and value[0] in "-@+!:":
                ignore = ignore or value[0] == "-"
                value = value[1:]
            lines.append((key == "ExecStartPre", ignore, shlex.split(value)))
    if service_type != "oneshot":
        raise LabHostsError(f"{name}: Type={service_type}: the lab boot only runs oneshot units")
    pre = [(i, a) for is_pre, i, a in lines if is_pre]
    return pre + [(i, a) for is_pre, i, a in lines if not is_pre]


def _enabled_units(host: dict[str, Any]) -> list[str]:
    """Units enabled on this host after the image was made (wants-symlinks in the /etc overlay's upper layer)."""
    base = Path(host["disk"]) / "upper" / "systemd" / "system"
    found = set()
    if base.is_dir():
        for wants in sorted(base.glob("*.wants")):
            for link in sorted(wants.iterdir()):
                if link.name.endswith(".service"):
                    found.add(link.name)
    return sorted(found)


def boot(state_dir: Path, state: dict[str, Any], host: dict[str, Any]) -> list[str]:
    """Run the boot sequence inside a freshly wired host; returns a log of what ran."""
    log = []
    before = _links(host)
    res = host_run(host, [SYSCTL], check=False)
    log.append(f"systemd-sysctl: rc={res.returncode}{' ' + res.stderr.strip() if res.stderr.strip() else ''}")
    for unit in _enabled_units(host):
        text = host_run(host, ["cat", f"/etc/systemd/system/{unit}"]).stdout
        for ignore, argv in _unit_exec_lines(text, unit):
            res = host_run(host, argv, check=False)
            log.append(f"{unit}: {shlex.join(argv)}: rc={res.returncode}")
            if res.returncode and not ignore:
                raise LabHostsError(f"{host['name']}: boot: {unit}: {shlex.join(argv)} failed: {res.stderr.strip()}")
    for name in state.get("sysv", ["ipvsadm"]):
        enabled = host_run(host, ["sh", "-c", f"ls /etc/rc2.d/S*{name} >/dev/null 2>&1"], check=False).returncode == 0
        if not enabled:
            log.append(f"sysv {name}: not enabled in /etc/rc2.d")
            continue
        res = host_run(host, [f"/etc/init.d/{name}", "start"], check=False)
        log.append(f"sysv {name} start: rc={res.returncode} {res.stdout.strip()}")
        if res.returncode:
            raise LabHostsError(f"{host['name']}: boot: /etc/init.d/{name} start failed: {res.stdout}{res.stderr}")
    for dev in sorted(_links(host) - before):
        prefixes = [f"--prefix=/net/{fam}/{kind}/{dev}" for fam in ("ipv4", "ipv6") for kind in ("conf", "neigh")]
        res = host_run(host, [SYSCTL, *prefixes], check=False)
        log.append(f"udev add {dev}: systemd-sysctl {' '.join(prefixes)}: rc={res.returncode}")
    _start_services(state_dir, host)
    log.append(f"services: {', '.join(s['name'] for s in host.get('services', [])) or 'none'}")
    host["boots"] = int(host.get("boots", 1)) + 1
    return log


# -- commands ----------------------------------------------------------------

def create(state_dir: Path, lab: str, spec: dict[str, Any]) -> dict[str, Any]:
    labnet.require_guest()
    if (state_dir / STATE_FILE).exists():
        raise LabHostsError(f"{state_dir} already has lab hosts: destroy them first")
    state: dict[str, Any] = {"id": labnet.short_id()[:4], "lab": lab, "bridges": {}, "hosts": {},
                             "sysv": spec.get("sysv", ["ipvsadm"])}
    _ensure_private_dir(RUN_ROOT / lab)
    _save(state_dir, state)
    labnet.load_ipvs()
    segments = sorted({link["segment"] for h in spec["hosts"] for link in h.get("links", [])})
    for seg in segments:
        dev = f"b{state['id']}{seg}"[:15]
        labnet.ip_batch([f"link add name {dev} type bridge", f"link set {dev} up"])
        state["bridges"][seg] = dev
        _save(state_dir, state)
    for index, item in enumerate(spec["hosts"]):
        name = item["name"]
        host = {
            "name": name, "index": index, "netns": netns_name(lab, name), "mnt": str(mount_ns_path(lab, name)),
            "disk": str(RUN_ROOT / lab / name / "disk"), "links": item.get("links", []),
            "gateway": item.get("gateway"), "gateway6": item.get("gateway6"),
            "forwarding": bool(item.get("forwarding", False)), "services": item.get("services", []), "boots": 1,
            "pids": [],
        }
        state["hosts"][name] = host
        Path(host["mnt"]).parent.mkdir(parents=True, exist_ok=True)
        _wire(state, host)
        _record_macs(host)
        _mount_ns(host)
        _save(state_dir, state)
        for argv in item.get("setup", []):  # the machine's own installation (kept on its /etc)
            host_run(host, list(argv))
        _start_services(state_dir, host)
        _save(state_dir, state)
    return state


def destroy(state_dir: Path) -> None:
    labnet.require_guest()
    try:
        state = _load(state_dir)
    except LabHostsError:
        return
    for host in state["hosts"].values():
        _stop_services(host)
        labnet.del_netns(host["netns"])
        _unmount_ns(host)
    for dev in state["bridges"].values():
        labnet.run(["ip", "link", "del", dev], check=False, timeout=10)
    labnet.run(["rm", "-rf", str(RUN_ROOT / state["lab"])], check=False)
    labnet.run(["umount", str(RUN_ROOT / state["lab"])], check=False, timeout=10)
    (state_dir / STATE_FILE).unlink(missing_ok=True)


def reboot(state_dir: Path, names: list[str]) -> dict[str, list[str]]:
    labnet.require_guest()
    state = _load(state_dir)
    names = names or sorted(state["hosts"])
    logs = {}
    for name in names:
        if name not in state["hosts"]:
            raise LabHostsError(f"unknown lab host {name!r} (known: {', '.join(sorted(state['hosts']))})")
        host = state["hosts"][name]
        _stop_services(host)
        labnet.del_netns(host["netns"])
        _unmount_ns(host)
        _wire(state, host)
        _mount_ns(host)
        logs[name] = boot(state_dir, state, host)
        _save(state_dir, state)
    return logs


def _read_sysctls(host: dict[str, Any]) -> dict[str, str]:
    script = ("import os, sys, json\nout = {}\n"
              "for top in sys.argv[1:]:\n"
              "    p = '/proc/sys/' + top\n"
              "    walk = [(p, [], [])] if os.path.isfile(p) else os.walk(p)\n"
              "    for d, _, files in walk:\n"
              "        for f in (files or ['']):\n"
              "            path = os.path.join(d, f) if f else d\n"
              "            try:\n"
              "                out[path[10:]] = ' '.join(open(path).read().split())\n"
              "            except OSError:\n"
              "                pass\n"
              "print(json.dumps(out))\n")
    res = host_run(host, [sys.executable, "-c", script, *SNAPSHOT_SYSCTL])
    data = json.loads(res.stdout)
    return {k: v for k, v in data.items() if not k.endswith(SNAPSHOT_SYSCTL_SKIP)}


def _disk_files(host: dict[str, Any]) -> dict[str, str]:
    upper = Path(host["disk"]) / "upper"
    files = {}
    for path in sorted(upper.rglob("*")):
        rel = "/etc/" + str(path.relative_to(upper))
        if path.is_symlink():
            files[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        elif path.is_dir():
            files[rel] = "dir"
    return files


def snapshot(state_dir: Path) -> dict[str, Any]:
    """Everything a role could change on each host: addresses, routes, links, IPVS, iptables, sysctls, /etc."""
    labnet.require_guest()
    state = _load(state_dir)
    snap: dict[str, Any] = {}
    for name, host in sorted(state["hosts"].items()):
        ns = host["netns"]

        def ipj(*args: str, _ns: str = ns) -> Any:
            return json.loads(labnet.run(["ip", "-n", _ns, "-j", *args]).stdout or "[]")

        links = [{k: v for k, v in link.items() if k in ("ifname", "flags", "mtu", "operstate", "address", "link_type")}
                 for link in ipj("link", "show")]
        snap[name] = {
            "links": links,
            # IPv6 link-local addresses and routes come and go on their own (DAD): not configuration.
            "addresses": [{"ifname": a["ifname"], "addr": sorted(f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])
                                                                 if not i["local"].startswith("fe80:"))}
                          for a in ipj("address", "show")],
            "routes": [r for r in ipj("route", "show", "table", "all")
                       if not str(r.get("dst", "")).startswith(("fe80:", "ff00:"))],
            "ipvs": host_run(host, ["ipvsadm", "-Sn"]).stdout,
            # Rules and non-default chains only: merely listing a table (iptables -C) instantiates
            # it with its empty built-in chains, which is not a change.
            "iptables": [line for line in host_run(host, ["iptables-legacy-save"]).stdout.splitlines()
                         if line.startswith("-") or (line.startswith(":") and not _BUILTIN_CHAIN.match(line))],
            "sysctl": _read_sysctls(host),
            "etc": _disk_files(host),
        }
    return snap


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal)."""
    diffs = []
    for host in sorted(set(old) | set(new)):
        a, b = old.get(host, {}), new.get(host, {})
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key), b.get(key)
            if va == vb:
                continue
            if isinstance(va, dict) and isinstance(vb, dict):
                for k in sorted(set(va) | set(vb)):
                    if va.get(k) != vb.get(k):
                        diffs.append(f"{host}: {key}: {k}: {va.get(k)!r} -> {vb.get(k)!r}")
            else:
                diffs.append(f"{host}: {key}: {json.dumps(va)} -> {json.dumps(vb)}")
    return diffs


def exec_in(state_dir: Path, name: str, argv: list[str]) -> int:
    state = _load(state_dir)
    if name not in state["hosts"]:
        raise LabHostsError(f"unknown lab host {name!r}")
    return subprocess.run(_nsenter(state["hosts"][name], argv), check=False).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.hosts", description=__doc__.split("\n", maxsplit=1)[0])
    p.add_argument("--state", required=True, type=Path, help="directory holding the lab hosts' state")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create the hosts of a JSON spec read from stdin (or --spec FILE)")
    c.add_argument("--lab", default="lvslab", help="name prefix of the namespaces (default lvslab)")
    c.add_argument("--spec", type=Path, default=None)
    sub.add_parser("destroy", help="stop services, delete namespaces, bridges and disks")
    r = sub.add_parser("reboot", help="simulated reboot of hosts (all when none named)")
    r.add_argument("hosts", nargs="*")
    e = sub.add_parser("exec", help="run a command inside a host")
    e.add_argument("host")
    e.add_argument("command", nargs=argparse.REMAINDER)
    s = sub.add_parser("snapshot", help="write the state of every host as JSON")
    s.add_argument("--out", type=Path, required=True)
    k = sub.add_parser("compare", help="compare the hosts with a snapshot; exit 1 and list differences")
    k.add_argument("--with", dest="with_", type=Path, required=True)
    k.add_argument("--consume", action="store_true", help="delete the snapshot file after comparing")
    k.add_argument("--missing-ok", action="store_true", help="exit 0 when the snapshot file does not exist")
    args = p.parse_args(argv)
    try:
        if args.cmd == "create":
            spec = json.loads(args.spec.read_text() if args.spec else sys.stdin.read())
            if isinstance(spec, list):
                spec = {"hosts": spec}
            state = create(args.state, args.lab, spec)
            print(json.dumps({n: {"netns": h["netns"], "mnt": h["mnt"]} for n, h in state["hosts"].items()}))
        elif args.cmd == "destroy":
            destroy(args.state)
        elif args.cmd == "reboot":
            print(json.dumps(reboot(args.state, args.hosts), indent=1))
        elif args.cmd == "exec":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            return exec_in(args.state, args.host, command)
        elif args.cmd == "snapshot":
            args.out.write_text(json.dumps(snapshot(args.state), indent=1, sort_keys=True))
        elif args.cmd == "compare":
            if not args.with_.exists():
                print(f"no snapshot {args.with_}: nothing to compare")
                return 0 if args.missing_ok else 1
            diffs = compare(json.loads(args.with_.read_text()), snapshot(args.state))
            for line in diffs:
                print(line)
            if args.consume:
                args.with_.unlink()
            if diffs:
                return 1
            print("no host changed since the snapshot")
    except (LabHostsError, labnet.NetnsError) as exc:
        print(f"lab.hosts: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
