"""Run on a lab machine (``ssh HOST python3 - < machine_snapshot.py``): its state as JSON.

Links, addresses, routes, loaded kernel modules, the IPVS table, iptables rules, the
net.* sysctls, active and enabled (linked) systemd units, and every file its disk holds under /etc,
/usr/local and /var/lib (the overlay's upper layer: what was written since the image).
Reads only: the IPVS table and iptables are read only if their modules are already loaded
(reading them would load them).  Standard library only (the machine's own python3).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

UPPER = "/lab/disk/upper"
FILE_ROOTS = ("etc", "usr/local", "var/lib")
# Written by the machine itself or by Ansible's connection, not by what is under test.
FILE_SKIP = ("var/lib/systemd", "var/lib/dhcp", "var/lib/private", "etc/.pwd.lock", "var/lib/sudo")
SYSCTL_ROOTS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf", "/proc/sys/net/ipv4/vs",
                "/proc/sys/net/ipv6/conf")
SYSCTL_SKIP = ("stable_secret",)


def out(argv: list[str], attempts: int = 3) -> str:
    # A busy machine's systemd can time out a D-Bus call ("Connection timed out"): asked again,
    # at most ``attempts`` times, so that a snapshot records the state and not the load.
    for attempt in range(attempts):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode == 0:
            return proc.stdout
        if attempt + 1 < attempts:
            time.sleep(2.0)
    return f"rc {proc.returncode}: {proc.stderr.strip()}"


def ipj(*args: str) -> object:
    text = out(["ip", "-j", *args])
    try:
        return json.loads(text)
    except ValueError:
        return text


def modules() -> list[str]:
    with open("/proc/modules") as f:
        return sorted(line.split()[0] for line in f)


def sysctls() -> dict[str, str]:
    values = {}
    for root in SYSCTL_ROOTS:
        paths = [root] if os.path.isfile(root) else []
        for base, _dirs, files in os.walk(root):
            paths += [os.path.join(base, f) for f in files]
        for path in paths:
            if path.rsplit("/", 1)[-1] in SYSCTL_SKIP:
                continue
            try:
                with open(path) as f:
                    values[path[len("/proc/sys/"):].replace("/", ".")] = f.read().strip()
            except OSError:
                continue
    return values


def enabled_links(root: str = "/etc/systemd/system") -> list[str]:
    links = []
    for base, _dirs, names in os.walk(root):
        if base.endswith((".wants", ".requires")):
            links += ["%s/%s -> %s" % (os.path.relpath(base, root), n, os.readlink(os.path.join(base, n)))
                      for n in names if os.path.islink(os.path.join(base, n))]
    return sorted(links)


def files() -> dict[str, str]:
    found = {}
    for root in FILE_ROOTS:
        for base, dirs, names in os.walk(os.path.join(UPPER, root)):
            rel_base = os.path.relpath(base, UPPER)
            dirs[:] = [d for d in dirs if not os.path.join(rel_base, d).startswith(FILE_SKIP)]
            for name in names:
                path = os.path.join(base, name)
                rel = os.path.relpath(path, UPPER)
                if rel.startswith(FILE_SKIP):
                    continue
                st = os.lstat(path)
                if os.path.islink(path):
                    found[rel] = "-> " + os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, "rb") as f:
                        found[rel] = "%o %s" % (st.st_mode & 0o7777, hashlib.sha256(f.read()).hexdigest()[:16])
                else:  # overlay whiteout (a deleted image file) or a device
                    found[rel] = "special %o" % st.st_mode
    return found


def main() -> None:
    mods = modules()
    links = [{k: link.get(k) for k in ("ifname", "address", "mtu", "operstate", "link_type")} for link in ipj("link")]
    addrs = sorted("%s %s/%s" % (a["ifname"], i["local"], i["prefixlen"])
                   for a in ipj("address") for i in a.get("addr_info", []))
    routes = sorted(json.dumps({k: r.get(k) for k in ("dst", "gateway", "dev", "table", "type")}, sort_keys=True)
                    for fam in ("-4", "-6") for r in ipj(fam, "route", "show", "table", "all")
                    if r.get("table") != "local")
    snap = {
        "links": links,
        "addresses": addrs,
        "routes": routes,
        "modules": mods,
        "ipvs": out(["ipvsadm", "-Sn"]) if "ip_vs" in mods else "(ip_vs not loaded)",
        "iptables": ("\n".join(line for line in out(["iptables-legacy-save"]).splitlines()
                               if not line.startswith("#")) if "ip_tables" in mods else "(ip_tables not loaded)"),
        "sysctls": sysctls(),
        "units_active": sorted(out(["systemctl", "list-units", "--state=active", "--plain", "--no-legend",
                                    "--type=service,socket,timer"]).split("\n")),
        # What `systemctl enable` writes: the .wants/.requires links under /etc/systemd/system, read
        # from disk (`systemctl --root=/ list-unit-files` reads every unit file: 24 s on a busy guest).
        "units_enabled": enabled_links(),
        "files": files(),
    }
    print(json.dumps(snap, sort_keys=True))


if __name__ == "__main__":
    main()
