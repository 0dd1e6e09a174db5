#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ipvs_config
short_description: Manage IPVS timeouts and the connection-sync daemons
version_added: 1.0.0
description:
  - Sets the IPVS connection timeouts (the equivalent of C(ipvsadm --set tcp tcpfin udp)) and
    starts or stops the connection-synchronisation daemons (C(ipvsadm --start-daemon) and
    C(--stop-daemon)), which copy connection state from the master director to the backups
    so that established connections survive a failover.
  - Everything is validated before anything is sent to the kernel. Options that are omitted
    are left as they are.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  timeouts:
    description: Connection timeouts in seconds; an omitted one is left unchanged.
    type: dict
    suboptions:
      tcp:
        description: Established TCP connections (kernel default 900).
        type: int
      tcpfin:
        description: TCP connections after a FIN (kernel default 120).
        type: int
      udp:
        description: UDP (kernel default 300).
        type: int
  sync_daemons:
    description:
      - The sync daemons that should run, at most one C(master) and one C(backup). A daemon
        not listed is stopped; omit the option to leave the daemons alone.
      - A running daemon whose settings differ is restarted (the kernel cannot change one in place).
      - Settings left out take the kernel's defaults (multicast group 224.0.0.81 or ff02::81, port
        8848, TTL 1, message size from the interface MTU) and are not compared.
    type: list
    elements: dict
    suboptions:
      state:
        description: C(master) sends connection state, C(backup) receives it.
        type: str
        choices: [master, backup]
        required: true
      interface:
        description: The interface the sync messages use (C(--mcast-interface)).
        type: str
        required: true
      syncid:
        description: The sync id (0 to 255); a backup only accepts messages with its id (0 accepts all).
        type: int
        default: 0
      sync_maxlen:
        description: Maximum size of a sync message payload (C(--sync-maxlen)).
        type: int
      mcast_group:
        description: Multicast group, IPv4 or IPv6 (C(--mcast-group)).
        type: str
      mcast_port:
        description: UDP port (C(--mcast-port)).
        type: int
      mcast_ttl:
        description: Multicast TTL, 1 to 255 (C(--mcast-ttl)).
        type: int
attributes:
  diff_mode:
    support: full
    description: Shows the timeouts and the sync daemons before and after.
extends_documentation_fragment:
  - lvs.ipvs.ipvs
  - lvs.ipvs.ipvs.attributes
seealso:
  - module: lvs.ipvs.ipvs_info
  - module: lvs.ipvs.ipvs_table
"""

EXAMPLES = r"""
- name: Shorter FIN timeout, and this director is the sync master
  lvs.ipvs.ipvs_config:
    timeouts:
      tcpfin: 30
    sync_daemons:
      - state: master
        interface: eth1
        syncid: 10

- name: On the backup director
  lvs.ipvs.ipvs_config:
    sync_daemons:
      - {state: backup, interface: eth1, syncid: 10}

- name: Stop every sync daemon
  lvs.ipvs.ipvs_config:
    sync_daemons: []
"""

RETURN = r"""
before:
  description: Timeouts and running sync daemons before the task.
  returned: always
  type: dict
  sample: {"timeouts": {"tcp": 900, "tcpfin": 120, "udp": 300}, "sync_daemons": []}
after:
  description: The same afterwards (in check mode, as predicted).
  returned: always
  type: dict
  sample: {"timeouts": {"tcp": 900, "tcpfin": 30, "udp": 300},
           "sync_daemons": [{"state": "master", "interface": "eth1", "syncid": 10, "sync_maxlen": 1472,
                             "mcast_group": "224.0.0.81", "mcast_port": 8848, "mcast_ttl": 1}]}
commands:
  description: The equivalent ipvsadm command lines.
  returned: always
  type: list
  elements: str
  sample: ["ipvsadm --set 900 30 300", "ipvsadm --start-daemon master --mcast-interface eth1 --syncid 10"]
"""

import copy
import ipaddress

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_module as common
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSKernelError

DAEMON_FIELDS = ("sync_maxlen", "mcast_group", "mcast_port", "mcast_ttl")
LIMITS = {"syncid": (0, 255), "sync_maxlen": (1, 65535 - 28), "mcast_port": (1, 65535), "mcast_ttl": (1, 255)}


def validate(params):
    """Error text naming the field, or None."""
    for name, value in (params.get("timeouts") or {}).items():
        if value is not None and not 0 <= value <= 2 ** 31 // 1000:
            return "timeouts.%s: %d is out of range 0..%d" % (name, value, 2 ** 31 // 1000)
    daemons = params.get("sync_daemons")
    states = set()
    for i, daemon in enumerate(daemons or []):
        where = "sync_daemons[%d]" % i
        if daemon["state"] in states:
            return "%s.state: a %s daemon is listed twice" % (where, daemon["state"])
        states.add(daemon["state"])
        if not daemon["interface"] or len(daemon["interface"]) > 15:
            return "%s.interface: %r is not an interface name" % (where, daemon["interface"])
        for name, (low, high) in LIMITS.items():
            value = daemon.get(name)
            if value is not None and not low <= value <= high:
                return "%s.%s: %d is out of range %d..%d" % (where, name, value, low, high)
        if daemon.get("mcast_group"):
            try:
                group = ipaddress.ip_address(daemon["mcast_group"])
            except ValueError:
                return "%s.mcast_group: %r is not an IP address" % (where, daemon["mcast_group"])
            if not group.is_multicast:
                return "%s.mcast_group: %s is not a multicast address" % (where, group)
            daemon["mcast_group"] = str(group)
    return None


def daemon_matches(want, have):
    return (have["interface"] == want["interface"] and have["syncid"] == want["syncid"]
            and all(want.get(k) in (None, have.get(k)) for k in DAEMON_FIELDS))


def daemon_command(daemon):
    parts = ["ipvsadm", "--start-daemon", daemon["state"], "--mcast-interface", daemon["interface"],
             "--syncid", str(daemon["syncid"])]
    for name, opt in (("sync_maxlen", "--sync-maxlen"), ("mcast_group", "--mcast-group"),
                      ("mcast_port", "--mcast-port"), ("mcast_ttl", "--mcast-ttl")):
        if daemon.get(name) is not None:
            parts += [opt, str(daemon[name])]
    return " ".join(parts)


def rollback(adapter, done, before):
    """Undo the steps already applied (newest first); returns the sentence for the error."""
    if not done:
        return "nothing had been changed"
    running = {d["state"]: d for d in before["sync_daemons"]}
    problems = []
    for kind, arg in reversed(done):
        try:
            if kind == "timeouts":
                old = before["timeouts"]
                adapter.set_timeouts(old["tcp"], old["tcpfin"], old["udp"])
            elif kind == "stop":
                adapter.start_daemon(running[arg])
            else:
                adapter.stop_daemon(arg["state"])
        except (IPVSKernelError, OSError, KeyError) as exc:
            problems.append("%s (%s)" % (kind, exc))
    if problems:
        return "ROLLBACK INCOMPLETE: %s" % ", ".join(problems)
    return "the %d earlier change%s of this task were rolled back" % (len(done), "" if len(done) == 1 else "s")


def main():
    daemon_spec = dict(
        state=dict(type="str", choices=["master", "backup"], required=True),
        interface=dict(type="str", required=True),
        syncid=dict(type="int", default=0),
        sync_maxlen=dict(type="int"),
        mcast_group=dict(type="str"),
        mcast_port=dict(type="int"),
        mcast_ttl=dict(type="int"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            timeouts=dict(type="dict", options=dict(tcp=dict(type="int"), tcpfin=dict(type="int"), udp=dict(type="int"))),
            sync_daemons=dict(type="list", elements="dict", options=daemon_spec),
            **common.NAMESPACE_SPEC
        ),
        supports_check_mode=True,
    )
    error = validate(module.params)
    if error:
        module.fail_json(msg=error)
    adapter = common.connect(module, lock=not module.check_mode)
    before = {"timeouts": adapter.timeouts(), "sync_daemons": sorted(adapter.daemons(), key=lambda d: d["state"])}
    after = copy.deepcopy(before)
    cmds, steps = [], []

    wanted = {k: v for k, v in (module.params["timeouts"] or {}).items() if v is not None}
    if any(before["timeouts"][k] != v for k, v in wanted.items()):
        after["timeouts"].update(wanted)
        new = after["timeouts"]
        cmds.append("ipvsadm --set %d %d %d" % (new["tcp"], new["tcpfin"], new["udp"]))
        steps.append(("timeouts", new))

    if module.params["sync_daemons"] is not None:
        want = {d["state"]: d for d in module.params["sync_daemons"]}
        have = {d["state"]: d for d in before["sync_daemons"]}
        for state in ("master", "backup"):
            running, wanted_daemon = have.get(state), want.get(state)
            if running and (wanted_daemon is None or not daemon_matches(wanted_daemon, running)):
                cmds.append("ipvsadm --stop-daemon %s" % state)
                steps.append(("stop", state))
                after["sync_daemons"] = [d for d in after["sync_daemons"] if d["state"] != state]
            if wanted_daemon and (running is None or not daemon_matches(wanted_daemon, running)):
                cmds.append(daemon_command(wanted_daemon))
                steps.append(("start", wanted_daemon))
                after["sync_daemons"].append({k: wanted_daemon.get(k) for k in ("state", "interface", "syncid") + DAEMON_FIELDS})
        after["sync_daemons"].sort(key=lambda d: d["state"])

    if steps and not module.check_mode:
        done = []
        try:
            for kind, arg in steps:
                if kind == "timeouts":
                    adapter.set_timeouts(arg["tcp"], arg["tcpfin"], arg["udp"])
                elif kind == "stop":
                    adapter.stop_daemon(arg)
                else:
                    adapter.start_daemon(arg)
                done.append((kind, arg))
        except (IPVSKernelError, OSError) as exc:
            module.fail_json(msg="%s; %s" % (exc, rollback(adapter, done, before)), commands=cmds,
                             applied_commands=cmds[:len(done)])
        after = {"timeouts": adapter.timeouts(), "sync_daemons": sorted(adapter.daemons(), key=lambda d: d["state"])}
    result = dict(changed=bool(steps), before=before, after=after, commands=cmds)
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
