#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lvs_sysctl
short_description: Set many kernel parameters at once, now and at boot
version_added: 1.0.0
description:
  - Sets the running value of each kernel parameter (C(/proc/sys)) and persists them all in one
    drop-in file under C(/etc/sysctl.d), which systemd-sysctl or C(sysctl --system) applies at boot.
  - The drop-in is owned by this module and holds exactly O(sysctls); it is written atomically,
    and only when its content changes.
  - Every key and value is checked before anything is written. An unknown parameter fails; a
    value outside the range of a parameter LVS uses (C(ip_forward), C(send_redirects),
    C(arp_ignore), C(arp_announce), C(rp_filter), C(net.ipv4.vs.*), ...) fails; any other value
    must have the shape of the current one (numbers for numbers, same number of fields).
  - A per-interface parameter (C(net.ipv4.conf.IFACE.NAME)) of an interface that does not exist
    yet (for example C(tunl0) before C(ipip) is loaded) is persisted with a warning and applied by
    the platform when the interface appears.
  - If the kernel refuses a value while the running values are set, the values already set are
    put back and nothing is persisted.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  sysctls:
    description:
      - Parameter name to value. Names in dotted (C(net.ipv4.ip_forward)) or path
        (C(net/ipv4/ip_forward)) form; in dotted form a dot inside an interface name is written
        as a slash (C(net.ipv4.conf.eth0/100.rp_filter)), as with sysctl(8).
      - Values are integers, text, booleans (C(1)/C(0)) or lists (joined with spaces).
      - Required with O(state=present).
    type: dict
  path:
    description: The drop-in file. Use one file per purpose; two tasks must not share a file.
    type: path
    default: /etc/sysctl.d/90-lvs-ipvs.conf
  persist:
    description: Write the drop-in file. With C(false) only the running values are set.
    type: bool
    default: true
  apply:
    description: Set the running values. With C(false) only the drop-in file is written.
    type: bool
    default: true
  modules:
    description:
      - Kernel modules that provide some of O(sysctls) (C(ip_vs) creates C(net.ipv4.vs.*)), loaded
        with C(modprobe) before any value is read or written, and listed in O(modules_path) so that
        C(systemd-modules-load) loads them at boot, before C(systemd-sysctl) applies the drop-in.
      - In check mode a module that is not loaded is not loaded; the parameters it provides are
        reported as changes (their running value is unknown until it loads).
    type: list
    elements: str
    default: []
    version_added: 1.0.0
  modules_path:
    description:
      - The C(modules-load.d) file that lists O(modules), owned by this module (written atomically,
        only when its content changes; removed with O(state=absent)). Ignored when O(modules) is
        empty or O(persist=false).
    type: path
    default: /etc/modules-load.d/lvs-ipvs.conf
    version_added: 1.0.0
  state:
    description:
      - C(present) sets the values and writes the drop-in file.
      - C(absent) removes the drop-in file (and O(modules_path) when O(modules) is given); running values are left as they are (the kernel has no
        "previous value" to go back to).
    type: str
    choices: [present, absent]
    default: present
  namespace:
    description:
      - Network namespace (a name from C(ip netns list), or a path such as C(/proc/1234/ns/net))
        whose running C(net.*) values are set. The drop-in file is still written in the file system
        the module runs in.
      - Omit for the namespace Ansible runs in.
    type: str
notes:
  - Needs no other collection (not C(ansible.posix)) and no pyroute2 (only M(lvs.ipvs.ipvs_service)
    and M(lvs.ipvs.ipvs_real_server) need it).
  - Belongs to the C(group/lvs.ipvs.ipvs) action group, so C(module_defaults) for that group (for
    example O(namespace)) apply here too.
attributes:
  check_mode:
    support: full
    description: Validates everything and reports the changes without writing anything.
  diff_mode:
    support: full
    description: Shows the drop-in file and the changed running values, before and after.
  idempotent:
    support: full
    description: A second run with the same arguments changes nothing.
extends_documentation_fragment:
  - lvs.ipvs.ipvs.common_attributes
seealso:
  - name: sysctl.d(5)
    description: The drop-in files systemd-sysctl applies at boot.
    link: https://man7.org/linux/man-pages/man5/sysctl.d.5.html
  - name: IPVS sysctl
    description: The C(net.ipv4.vs.*) parameters, in the kernel's documentation.
    link: https://docs.kernel.org/networking/ipvs-sysctl.html
  - module: lvs.ipvs.ipvs_config
"""

EXAMPLES = r"""
- name: A director forwards and does not send ICMP redirects
  lvs.ipvs.lvs_sysctl:
    path: /etc/sysctl.d/90-lvs-director.conf
    sysctls:
      net.ipv4.ip_forward: 1
      net.ipv4.conf.all.send_redirects: 0
      net.ipv4.conf.default.send_redirects: 0
      net.ipv4.conf.eth1.send_redirects: 0
      net.ipv4.vs.expire_nodest_conn: 1
      net.ipv4.vs.expire_quiescent_template: 1
    # ip_vs creates net.ipv4.vs.*: loaded first, and at boot before systemd-sysctl.
    modules: [ip_vs, ip_vs_wrr]
    modules_path: /etc/modules-load.d/lvs-director.conf

- name: A DR real server never answers ARP for the VIPs on lo
  lvs.ipvs.lvs_sysctl:
    path: /etc/sysctl.d/90-lvs-real-server.conf
    sysctls:
      net.ipv4.conf.all.arp_ignore: 1
      net.ipv4.conf.all.arp_announce: 2
      net.ipv4.conf.eth0.arp_ignore: 1
      net.ipv4.conf.eth0.arp_announce: 2

- name: Running values only, in another network namespace
  lvs.ipvs.lvs_sysctl:
    namespace: lb1
    persist: false
    sysctls:
      net.ipv4.vs.conntrack: true

- name: Remove the drop-in (running values stay)
  lvs.ipvs.lvs_sysctl:
    path: /etc/sysctl.d/90-lvs-real-server.conf
    state: absent
"""

RETURN = r"""
sysctls:
  description: The parameters in canonical form (dotted names, values as /proc/sys shows them).
  returned: success
  type: dict
  sample: {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.send_redirects": "0"}
changes:
  description: The running values changed (in check mode, that would change).
  returned: success
  type: list
  elements: dict
  sample: [{"key": "net.ipv4.ip_forward", "before": "0", "after": "1"}]
modules_loaded:
  description: The kernel modules of O(modules) this run loaded (in check mode, would load).
  returned: state is present
  type: list
  elements: str
  sample: [ip_vs]
modules_file_changed:
  description: Whether O(modules_path) was (or in check mode would be) written.
  returned: state is present
  type: bool
removed:
  description: The files removed by O(state=absent).
  returned: state is absent
  type: list
  elements: str
file_changed:
  description: Whether the drop-in file was (or, in check mode, would be) written or removed.
  returned: success
  type: bool
  sample: true
path:
  description: The drop-in file.
  returned: success
  type: str
  sample: /etc/sysctl.d/90-lvs-ipvs.conf
"""

import os

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _sysctl as S
from ansible_collections.lvs.ipvs.plugins.module_utils._files import check_writable, write_atomic


def _read_file(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise S.SysctlError("path", "cannot read %s: %s" % (path, exc.strerror)) from None


def _write_file(module, path, text, field="path"):
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise S.SysctlError(field, "directory %s does not exist" % directory)
    write_atomic(path, text, move=module.atomic_move)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sysctls=dict(type="dict"),
            path=dict(type="path", default="/etc/sysctl.d/90-lvs-ipvs.conf"),
            persist=dict(type="bool", default=True),
            apply=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            namespace=dict(type="str"),
            modules=dict(type="list", elements="str", default=[]),
            modules_path=dict(type="path", default="/etc/modules-load.d/lvs-ipvs.conf"),
        ),
        required_if=[("state", "present", ("sysctls",))],
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    try:
        if not path.endswith(".conf"):
            raise S.SysctlError("path", "%s must end in .conf (systemd-sysctl and sysctl --system ignore other files)" % path)
        modules = S.check_modules(p["modules"])
        mod_path = p["modules_path"] if modules and p["persist"] else None
        if mod_path is not None and not mod_path.endswith(".conf"):
            raise S.SysctlError("modules_path", "%s must end in .conf (systemd-modules-load ignores other files)" % mod_path)
        old_text = _read_file(path)
        old_mods = _read_file(mod_path) if mod_path else None
        if p["state"] == "absent":
            gone = [f for f, text in ((path, old_text), (p["modules_path"] if modules else None, old_mods)) if f and text is not None]
            if gone and not module.check_mode:
                for f in gone:
                    os.unlink(f)
            result = dict(changed=bool(gone), file_changed=path in gone, path=path, sysctls={}, changes=[], removed=gone)
            if module._diff:
                result["diff"] = dict(before=old_text or "", after="", before_header=path, after_header=path)
            module.exit_json(**result)
        if p["persist"] and not module.check_mode:
            # Every file this run will write is proven writable before the first change.
            for target, field in ((path, "path"), (mod_path, "modules_path")):
                problem = target and check_writable(target, field)
                if problem:
                    raise S.SysctlError(field, problem.split(": ", 1)[1] + "; nothing was changed")
        pending = [m for m in modules if not S.module_loaded(m)]
        if pending and not module.check_mode:
            for name in pending:
                rc, out, err = module.run_command(["modprobe", name])
                if rc != 0:
                    raise S.SysctlError("modules", "modprobe %s failed: %s" % (name, (err or out).strip() or "rc %d" % rc))
        if p["namespace"] is not None:
            S.enter_namespace(p["namespace"])
        values, running, warnings = S.validate(p["sysctls"], S.exists, S.read_value,
                                               pending=pending if module.check_mode else ())
        changes = S.plan(values, running) if p["apply"] else []
        if module.check_mode and p["apply"]:
            changes += [{"key": k, "before": None, "after": values[k]} for k in sorted(values)
                        if running[k] is None and S.provider_of(k, pending)]
        new_text = S.render(values)
        file_changed = p["persist"] and new_text != old_text
        new_mods = S.render_modules(modules) if mod_path else None
        mods_changed = mod_path is not None and new_mods != old_mods
        if not module.check_mode:
            S.apply(changes)
            written = []
            try:
                if file_changed:
                    _write_file(module, path, new_text)
                    written.append((path, old_text))
                if mods_changed:
                    _write_file(module, mod_path, new_mods, "modules_path")
            except (S.SysctlError, OSError) as exc:
                # A later step failed: undo the running values and the file already written.
                S.apply([{"key": c["key"], "before": c["after"], "after": c["before"]} for c in reversed(changes)])
                for target, text in written:
                    if text is None:
                        os.unlink(target)
                    else:
                        _write_file(module, target, text)
                if isinstance(exc, S.SysctlError):
                    field, detail = exc.key, str(exc).split(": ", 1)[1]
                else:
                    field, detail = ("modules_path" if written or not file_changed else "path"), exc.strerror or str(exc)
                raise S.SysctlError(field, "%s; the running values and files this task had changed were restored" % detail) from None
    except S.SysctlError as exc:
        module.fail_json(msg=str(exc), key=exc.key)
    for warning in warnings:
        module.warn(warning)
    result = dict(changed=bool(changes) or file_changed or mods_changed or bool(pending), sysctls=values, changes=changes,
                  file_changed=file_changed, path=path, modules_loaded=pending, modules_file_changed=mods_changed)
    if module._diff:
        diffs = []
        if p["persist"]:
            diffs.append(dict(before=old_text or "", after=new_text, before_header=path, after_header=path))
        if mod_path:
            diffs.append(dict(before=old_mods or "", after=new_mods, before_header=mod_path, after_header=mod_path))
        if changes:
            diffs.append(dict(before="".join("%s = %s\n" % (c["key"], c["before"]) for c in changes),
                              after="".join("%s = %s\n" % (c["key"], c["after"]) for c in changes),
                              before_header="running values (before)", after_header="running values (after)"))
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
