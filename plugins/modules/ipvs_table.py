#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ipvs_table
short_description: Converge the whole IPVS table (resource module)
version_added: 1.0.0
description:
  - Declares the IPVS table (virtual services with their real servers) and converges the
    kernel to it with the fewest operations, in the resource-module style of Ansible network
    collections (states C(merged), C(replaced), C(overridden), C(deleted), C(gathered),
    C(rendered), C(parsed)).
  - Existing objects are changed in place, never deleted and re-added; new real servers are
    added before old ones are removed (make before break).
  - The whole configuration is validated before the first kernel operation. Changes are sent
    in batches; if the kernel refuses one, every change already made is undone, so the table
    is as it was, and the error names the object.
  - O(owned) restricts what the task may touch, so a table shared with keepalived or another
    tool is never disturbed.
  - Real servers being removed can be drained first (O(drain_timeout)).
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  config:
    description:
      - The services, each with its C(real_servers), in the shape M(lvs.ipvs.ipvs_info) returns
        (extra keys such as C(stats) are ignored). Service keys are those of
        M(lvs.ipvs.ipvs_service), real-server keys those of M(lvs.ipvs.ipvs_real_server).
      - A real server may carry C(drained=true) to keep it at weight 0 without removing it.
      - With O(state=merged), a service without C(real_servers) leaves its real servers alone.
      - Mutually exclusive with O(src). A big table given here is templated by Ansible on the
        controller and sent as a module argument; O(src) avoids both.
    type: list
    elements: dict
  src:
    description:
      - A file holding the table, read instead of O(config) (mutually exclusive with it), as a YAML or
        JSON list of services in O(config) shape (or a mapping with one key whose value is that list,
        such as a vars file that defines one variable), or C(ipvsadm-save -n) text.
      - The file is on the controller (looked up like the O(ansible.builtin.copy#module:src) of
        M(ansible.builtin.copy), in the role's or playbook's C(files/) first) and transferred to the
        target for the run, or on the target with O(remote_src=true). It is not templated, and Ansible
        never loads it as variables; for a table of thousands of services that is most of the run
        time saved. JSON is read fastest.
      - YAML is read with PyYAML's C loader when libyaml is there (on the target); JSON and
        C(ipvsadm-save) text need nothing beyond Python.
    type: path
    version_added: 1.1.0
  src_format:
    description:
      - How to read O(src). C(auto) goes by the file name (C(.json), C(.yml)/C(.yaml)), else by the
        content (an C(-A)/C(-a) line first is C(ipvsadm-save) text, anything else JSON if it parses
        as JSON, else YAML).
    type: str
    choices: [auto, yaml, json, ipvsadm]
    default: auto
    version_added: 1.1.0
  remote_src:
    description:
      - O(src) is a path on the target, not on the controller.
    type: bool
    default: false
    version_added: 1.1.0
  return_tables:
    description:
      - Also return the whole owned table before (RV(before)) and after (RV(after)) the task.
      - "Off by default, unlike the network resource modules of C(ansible.netcommon), which always
        return C(before) and C(after): with a table of thousands of services those two copies are
        most of the result, and handling them on the controller costs more than the kernel work.
        By default the result is C(changed), RV(commands), RV(summary) (counts) and, with C(--diff),
        a diff of the services that change only."
      - O(state=gathered) always returns its table (RV(gathered)); that is its point.
    type: bool
    default: false
    version_added: 1.1.0
  state:
    description:
      - C(merged) adds and edits what is listed and touches nothing else.
      - C(replaced) makes each listed service exactly as given, its real-server list included;
        other services are untouched.
      - C(overridden) makes the owned part of the table equal O(config).
      - C(deleted) removes the listed services (only the keys matter); with no O(config), every
        owned service (this needs O(confirm_flush)).
      - C(gathered) returns the (owned) table as C(gathered), in O(config) shape.
      - C(rendered) returns O(config) as C(ipvsadm-restore) text in C(rendered), offline.
      - C(parsed) returns O(running_config) (C(ipvsadm-save -n) text) as C(parsed), offline.
    type: str
    choices: [merged, replaced, overridden, deleted, gathered, rendered, parsed]
    default: merged
  running_config:
    description: C(ipvsadm-save -n) (or C(ipvsadm-restore)) text, for O(state=parsed).
    type: str
  owned:
    description:
      - What this task owns. Services outside it are never changed or removed, and listing one
        in O(config) is an error. Omit to own the whole table.
      - An address service is owned when O(owned.addresses) or O(owned.ports) is given and it
        matches every one given; a fwmark service when O(owned.fwmarks) is given and matches.
    type: dict
    suboptions:
      addresses:
        description: Virtual addresses or networks (CIDR), IPv4 or IPv6.
        type: list
        elements: str
      ports:
        description: Virtual ports or ranges (C(8000-8099)).
        type: list
        elements: str
      fwmarks:
        description: Firewall marks or ranges (C(100-199)).
        type: list
        elements: str
  confirm_flush:
    description:
      - Must be true for O(state=overridden) with an empty O(config), or O(state=deleted) with no
        O(config), since both remove every owned service.
    type: bool
    default: false
  drain_timeout:
    description:
      - Seconds to drain real servers that are removed (alone or with their service). They are
        first set to weight 0 (no new connections), then deleted when their active and inactive
        connections reach 0, or when this timeout expires. UDP real servers are deleted at once.
      - C(0) deletes at once.
    type: int
    default: 0
  persist:
    description:
      - Write the resulting table, restorable without loss, to O(persist_path) so that the
        distribution's ipvsadm service restores it at boot. Written atomically, and only when
        its content changes.
      - With O(owned), only the owned services are written. Services of keepalived or another tool
        are theirs to restore, not this task's. Without O(owned), the whole table.
    type: bool
    default: false
  persist_path:
    description:
      - Where O(persist) writes. Default C(/etc/sysconfig/ipvsadm) on the Red Hat family,
        C(/etc/ipvsadm.rules) elsewhere (Debian and derivatives).
    type: path
notes:
  - "A run killed mid-apply (SIGKILL, a lost connection) stops between two batches of operations.
    Operations go in make-before-break order across the whole task: services and real servers are
    added and edited before anything is deleted, so a killed run can leave new services, new real
    servers, or real servers that were to be removed (at their old weight or at weight 0 when
    O(drain_timeout) is set), but never a virtual service that had real servers with an empty pool.
    It cannot leave the rules file half-written (O(persist) writes atomically), but the file may
    still hold the previous table. Its lock is released by the kernel. The next run converges."
  - Input the kernel accepts but C(ipvsadm) documents as out of range (weights above 65535, port-0
    services without persistence, one-packet scheduling on TCP, persistence timeouts above 31 days,
    DR or tunnel real servers on another port) is applied with a warning, so that whatever
    RV(gathered) returns can be fed back as O(config) unchanged.
extends_documentation_fragment:
  - lvs.ipvs.ipvs
  - lvs.ipvs.ipvs.attributes
seealso:
  - module: lvs.ipvs.ipvs_info
  - module: lvs.ipvs.ipvs_service
  - module: lvs.ipvs.ipvs_real_server
  - module: lvs.ipvs.ipvs_config
"""

EXAMPLES = r"""
- name: The web VIPs of this director, exactly; other services are keepalived's
  lvs.ipvs.ipvs_table:
    state: overridden
    owned:
      addresses: [192.0.2.0/28]
    drain_timeout: 120
    persist: true
    config:
      - address: 192.0.2.10
        port: 443
        scheduler: wlc
        persistence_timeout: 600
        real_servers:
          - {address: 10.0.0.11, forwarding: nat, weight: 3}
          - {address: 10.0.0.12, forwarding: nat, weight: 3}
          - {address: 10.0.0.13, forwarding: nat, drained: true}

- name: Take a real server's weight down (one in-place edit)
  lvs.ipvs.ipvs_table:
    state: merged
    config:
      - address: 192.0.2.10
        port: 443
        real_servers:
          - {address: 10.0.0.11, forwarding: nat, weight: 1}

- name: A table of thousands of services from a file on the controller (not templated, not a vars file)
  lvs.ipvs.ipvs_table:
    state: overridden
    src: ipvs/director1.yml   # files/ipvs/director1.yml; or .json, or ipvsadm-save -n text
  register: table_run

- name: Show what changed (counts; the full tables only with return_tables=true)
  ansible.builtin.debug:
    var: table_run.summary

- name: Restore a saved table kept on the target
  lvs.ipvs.ipvs_table:
    state: overridden
    src: /etc/ipvsadm.rules
    remote_src: true

- name: Read the table in config shape
  lvs.ipvs.ipvs_table:
    state: gathered
  register: table

- name: Offline, turn ipvsadm-save output into config
  lvs.ipvs.ipvs_table:
    state: parsed
    running_config: "{{ lookup('ansible.builtin.file', 'ipvsadm.rules') }}"
"""

RETURN = r"""
summary:
  description:
    - Counts of the owned table before and after the task (after = the plan's prediction in check
      mode), and of the operations by kind.
  returned: when the state changes the table
  type: dict
  sample: {"services": {"before": 1000, "after": 1000}, "real_servers": {"before": 10000, "after": 10000},
           "ops": {"set_real_server": 1}}
  version_added: 1.1.0
before:
  description: The owned table before the task (not for rendered and parsed).
  returned: when O(return_tables=true) and the kernel was read
  type: list
  elements: dict
after:
  description: The owned table afterwards; in check mode, the prediction from the plan.
  returned: when O(return_tables=true) and the table changed (or, in check mode, would change)
  type: list
  elements: dict
diff:
  description:
    - With C(--diff), the services that change, before and after, in C(ipvsadm-save -n) form (thresholds
      kept). Services the task does not change are left out (O(return_tables) has the whole tables).
  returned: in diff mode, when the state changes the table
  type: dict
commands:
  description: The operations as ipvsadm command lines, in the order they are sent (drain edits included).
  returned: when the state changes the table
  type: list
  elements: str
  sample: ["ipvsadm -a -t 192.0.2.10:443 -r 10.0.0.14:443 -m -w 3", "ipvsadm -e -t 192.0.2.10:443 -r 10.0.0.13:443 -m -w 0"]
gathered:
  description: The owned table, in O(config) shape.
  returned: when O(state=gathered)
  type: list
  elements: dict
rendered:
  description: O(config) as C(ipvsadm-restore) text.
  returned: when O(state=rendered)
  type: str
parsed:
  description: O(running_config) as O(config).
  returned: when O(state=parsed)
  type: list
  elements: dict
drained:
  description: The real servers that were drained before removal, with the connections left and the seconds waited.
  returned: when real servers were drained
  type: list
  elements: dict
  sample: [{"service": "tcp 192.0.2.10:443", "real_server": "10.0.0.13:443", "connections": 0, "waited": 4.1}]
persisted:
  description: The rules file written by O(persist) and whether it changed.
  returned: when O(persist=true)
  type: dict
  sample: {"path": "/etc/ipvsadm.rules", "changed": true}
"""

import json
import os
import re
import time

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_module as common
from ansible_collections.lvs.ipvs.plugins.module_utils._files import check_writable, write_atomic
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import commands, parse_save, render_restore
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    IPVSValidationError,
    normalize_table,
    parse_bool,
    real_server_key,
    service_key,
    service_label,
)
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import IPVSKernelError
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import apply_ops, ownership, plan, split_drain

DRAIN_POLL = 1.0
# The largest src file read (a restore line is < 300 characters; 1,000,000 real servers fit).
MAX_SRC = 256 * 1024 * 1024
_IPVSADM_LINE = re.compile(r"\s*(ipvsadm\s+)?-[AaEe]\s")


def _src_format(path, text, fmt):
    if fmt != "auto":
        return fmt
    lower = path.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith((".yml", ".yaml")):
        return "yaml"
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped[0] in "[{":
            return "json-or-yaml"  # JSON is YAML too: flow-style YAML starts the same way
        return "ipvsadm" if _IPVSADM_LINE.match(line) else "yaml"
    return "ipvsadm"  # empty or only comments: an empty table in every format


def _yaml_load(text):
    """YAML with PyYAML's C loader when libyaml is there (the pure-Python loader is ~10x slower)."""
    try:
        import yaml  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise IPVSValidationError("src", "reading YAML needs PyYAML on the target; give the table as JSON "
                                         "or ipvsadm-save -n text, or install PyYAML") from None
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        return yaml.load(text, Loader=loader)  # nosec B506 - a safe loader
    except yaml.YAMLError as exc:
        raise IPVSValidationError("src", "not valid YAML: %s" % " ".join(str(exc).split())[:300]) from None


def load_src(path, fmt="auto"):
    """The table held by the file ``path`` (YAML, JSON or ipvsadm-save text), canonical."""
    try:
        size = os.path.getsize(path)
        if size > MAX_SRC:
            raise IPVSValidationError("src", "%s is %d bytes (at most %d)" % (path, size, MAX_SRC))
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise IPVSValidationError("src", "cannot read %s: %s" % (path, exc.strerror)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IPVSValidationError("src", "%s is not UTF-8 text (byte %d)" % (path, exc.start)) from None
    fmt = _src_format(path, text, fmt)
    if fmt == "ipvsadm":
        return parse_save(text, "src")
    raw = None
    if fmt in ("json", "json-or-yaml"):
        try:
            raw = json.loads(text) if text.strip() else []
        except ValueError as exc:
            if fmt == "json":
                raise IPVSValidationError("src", "not valid JSON: %s" % exc) from None
            fmt = "yaml"
    if fmt == "yaml":
        raw = _yaml_load(text)
    if raw is None:
        raw = []
    if isinstance(raw, dict):
        lists = list(raw.values())
        if len(lists) != 1 or not isinstance(lists[0], list):
            keys = "keys %s" % ", ".join(sorted(str(k) for k in raw)[:5]) if len(raw) > 1 else "no list" if raw else "no key"
            raise IPVSValidationError("src", "a mapping must have exactly one key, whose value is the list of services "
                                             "(it has %s)" % keys)
        raw = lists[0]
    if not isinstance(raw, list):
        raise IPVSValidationError("src", "must hold a list of services (it holds %s)" % type(raw).__name__)
    return _config(raw, "src")


def _config(raw, path="config"):
    """The config option, with ``drained: true`` real servers turned into weight 0 (strict boolean)."""
    services = []
    for i, svc in enumerate(raw or []):
        if not isinstance(svc, dict):
            raise IPVSValidationError("%s[%d]" % (path, i), "must be a dictionary")
        svc = dict(svc)
        if isinstance(svc.get("real_servers"), list):
            servers = []
            for j, rs in enumerate(svc["real_servers"]):
                if isinstance(rs, dict) and "drained" in rs:
                    rs = dict(rs)
                    if parse_bool(rs.pop("drained"), "%s[%d].real_servers[%d].drained" % (path, i, j)):
                        rs["weight"] = 0
                servers.append(rs)
            svc["real_servers"] = servers
        services.append(svc)
    return normalize_table(services, path, strict=False)


def default_persist_path():
    return "/etc/sysconfig/ipvsadm" if os.path.exists("/etc/redhat-release") else "/etc/ipvsadm.rules"


def persist(module, path, table):
    """Write the table (restorable text) atomically if its content differs; returns changed."""
    content = render_restore(table)
    try:
        with open(path) as handle:
            if handle.read() == content:
                return False
    except OSError:
        pass
    if module.check_mode:
        return True
    write_atomic(path, content, move=module.atomic_move)
    return True


def drain(adapter, waits, timeout):
    """Wait (bounded) until the drained real servers have no connections; returns a report."""
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    pending = set(waits)
    left = {}
    while True:
        table = {service_key(s): s for s in adapter.dump(stats=True)}
        for key in list(pending):
            svc = table.get(key[0])
            rs = next((r for r in (svc or {}).get("real_servers") or [] if real_server_key(r) == key[1]), None)
            conns = rs["active_connections"] + rs["inactive_connections"] if rs else 0
            left[key] = conns
            if conns == 0:
                pending.discard(key)
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(DRAIN_POLL)
    waited = round(time.monotonic() - start, 1)
    return [{"service": _label_from_key(k[0]), "real_server": "%s:%s" % k[1], "connections": left.get(k, 0), "waited": waited}
            for k in waits]


def _label_from_key(key):
    if key[0] == "fwmark":
        return service_label({"fwmark": key[2], "family": key[1]})
    return service_label({"protocol": key[0], "family": key[1], "address": key[2], "port": key[3]})


def summarize(before, after_changed, before_changed, ops):
    """Counts of the owned table before/after and of the ops by kind (after from the changed services only)."""
    def count(services):
        return len(services), sum(len(svc.get("real_servers") or []) for svc in services)
    svc_before, rs_before = count(before)
    svc_gone, rs_gone = count(before_changed)
    svc_new, rs_new = count(after_changed)
    kinds = {}
    for op in ops:
        kinds[op["action"]] = kinds.get(op["action"], 0) + 1
    return {"services": {"before": svc_before, "after": svc_before - svc_gone + svc_new},
            "real_servers": {"before": rs_before, "after": rs_before - rs_gone + rs_new},
            "ops": kinds}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="list", elements="dict"),
            src=dict(type="path"),
            src_format=dict(type="str", default="auto", choices=["auto", "yaml", "json", "ipvsadm"]),
            remote_src=dict(type="bool", default=False),
            return_tables=dict(type="bool", default=False),
            state=dict(type="str", default="merged",
                       choices=["merged", "replaced", "overridden", "deleted", "gathered", "rendered", "parsed"]),
            running_config=dict(type="str"),
            owned=dict(type="dict", options=dict(
                addresses=dict(type="list", elements="str"),
                ports=dict(type="list", elements="str"),
                fwmarks=dict(type="list", elements="str"),
            )),
            confirm_flush=dict(type="bool", default=False),
            drain_timeout=dict(type="int", default=0),
            persist=dict(type="bool", default=False),
            persist_path=dict(type="path"),
            **common.NAMESPACE_SPEC
        ),
        required_if=[("state", "parsed", ("running_config",)), ("state", "rendered", ("config", "src"), True)],
        mutually_exclusive=[("config", "src")],
        supports_check_mode=True,
    )
    p = module.params
    state = p["state"]
    tables = p["return_tables"]
    if state == "parsed":
        module.exit_json(changed=False, parsed=common.validated(module, parse_save, p["running_config"], "running_config"))
    if p["src"] is not None:
        want = common.validated(module, load_src, p["src"], p["src_format"])
        field = "src"
    else:
        want = common.validated(module, _config, p["config"])
        field = "config"
    if state == "rendered":
        module.exit_json(changed=False, rendered=render_restore(want))
    if p["drain_timeout"] < 0:
        module.fail_json(msg="drain_timeout: %d is negative" % p["drain_timeout"])
    owns = common.validated(module, ownership, p["owned"])
    for i, svc in enumerate(want):
        if not owns(svc):
            module.fail_json(msg="%s[%d]: service %s is outside what this task owns (owned)" % (field, i, service_label(svc)))
    if not want and state in ("overridden", "deleted") and not p["confirm_flush"]:
        module.fail_json(msg="%s: empty with state=%s would remove every owned service; "
                             "set confirm_flush=true if that is what you want" % (field, state))

    persist_path = None
    if p["persist"]:
        persist_path = p["persist_path"] or default_persist_path()
        if not module.check_mode:
            # Proven writable before the first kernel change, not found out after it.
            problem = check_writable(persist_path, "persist_path")
            if problem:
                module.fail_json(msg=problem + "; nothing was changed")
    # A changing run holds the namespace's lock from before its dump until it exits.
    adapter = common.connect(module, lock=state != "gathered" and not module.check_mode)
    have = adapter.dump()
    before = [s for s in have if owns(s)]
    if state == "gathered":
        module.exit_json(changed=False, gathered=before)

    ops = common.validated(module, plan, want, have, state, owns)
    first, removals, waits = ops, [], []
    if p["drain_timeout"] and any(op["action"].startswith("del") for op in ops):
        first, removals, waits = split_drain(ops, have)
    # Only the services the ops touch are predicted and diffed: a no-op or one weight change on a
    # table of 10,000 real servers costs the dump and the plan, not copies of the whole table.
    keys = {service_key(op["service"]) for op in ops}
    before_changed = [s for s in before if service_key(s) in keys]
    after_changed = common.validated(module, apply_ops, before_changed, ops) if ops else []
    result = dict(changed=bool(ops), commands=commands(first + removals),
                  summary=summarize(before, after_changed, before_changed, ops))
    if tables:
        result["before"] = before
    if ops and not module.check_mode:
        try:
            adapter.apply_batch(first, have)
            if waits:
                result["drained"] = drain(adapter, waits, p["drain_timeout"])
            if removals:
                middle = adapter.dump()
                try:
                    adapter.apply_batch(removals, middle)
                except IPVSKernelError:
                    # Make the whole task all or nothing: undo the first phase too.
                    adapter.undo(first, have)
                    raise
        except IPVSKernelError as exc:
            module.fail_json(msg=str(exc), commands=result["commands"])
    table = None
    if tables or persist_path:
        # The whole table: read back after a real change, predicted in check mode.
        if not ops:
            table = have
        elif module.check_mode:
            table = common.validated(module, apply_ops, have, ops)
        else:
            table = adapter.dump()
    if tables and ops:
        # Like the network resource modules: no after when nothing changed (it is before).
        result["after"] = [s for s in table if owns(s)]
    if module._diff and ops:
        result["diff"] = common.diff(before_changed, after_changed, "ipvs table, the %d services that change" % len(keys))
    if persist_path:
        try:
            changed = persist(module, persist_path, [s for s in table if owns(s)])
        except OSError as exc:
            detail = "persist_path: writing %s failed (%s)" % (persist_path, exc.strerror)
            if ops and not module.check_mode:
                undo, failures = adapter.undo(first + removals, have)
                detail += ("; the kernel changes were rolled back" if not failures else
                           "; ROLLBACK INCOMPLETE: %d of %d undo operations refused" % (len(failures), len(undo)))
            module.fail_json(msg=detail, commands=result["commands"])
        result["persisted"] = {"path": persist_path, "changed": changed}
        result["changed"] = result["changed"] or changed
    module.exit_json(**result)


if __name__ == "__main__":
    main()
