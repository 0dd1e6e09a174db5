#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lvs_vip
short_description: Virtual IP addresses (VIPs) on an interface, IPv4 and IPv6
version_added: 1.0.0
description:
  - Adds the VIPs of a director (on its front interface) or of a real server (on C(lo) for direct
    routing, on C(tunl0) or C(ip6tnl0) for tunnelling) to an interface, and removes the ones this
    module owns that are no longer wanted. Addresses it does not own (the host's own addresses, VIPs of
    keepalived or of another task) are never changed or removed.
  - "Ownership: an IPv4 address is owned when it carries O(label) (the kernel keeps the label with the
    address, C(ip address) shows it, and the boot units of the roles add the same label). IPv6 addresses
    have no labels: the ones this module adds are recorded in a state file (O(state_path), under
    C(/var/lib) so the record survives a reboot, when the boot units add the addresses again). A record
    counts only while its address is on the interface; records of addresses gone from it are dropped."
  - A listed address that is already on the interface but not owned (added by hand or by another tool)
    satisfies O(state=present) and O(state=exact) as it is, with a warning, and is returned in
    RV(not_owned); it is never taken over or removed.
  - IPv6 VIPs are added with C(nodad) (usable at once, and a VIP shared by several hosts never fails
    duplicate address detection) and, by default, deprecated (O(ipv6_deprecated)).
  - Every option is validated before the first change. If the kernel refuses one change, the changes
    this task already made are undone and the error says so; the state file is proven writable before
    the first change.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  interface:
    description:
      - The device, for example C(eth0), C(lo), C(tunl0).
      - It must exist; a tunnel device such as C(tunl0) appears when its kernel module (C(ipip)) is
        loaded, which this module does not do. The device is looked up in a list of all devices, so a
        run never loads a module by asking for a device by name.
      - A device that is down gets its addresses (with a warning unless O(link_up)); they answer once it is up.
    type: str
    required: true
  addresses:
    description:
      - The VIPs, each one address, IPv4 or IPv6, with no prefix length or with C(/32) or C(/128).
        Written in any valid form; returned in canonical form (IPv6 compressed), always with the prefix length.
      - Required with O(state=present) and O(state=exact). With O(state=absent), omit it to remove every
        address this module owns on the interface.
    type: list
    elements: str
  state:
    description:
      - C(present) adds the listed addresses that are missing and keeps every other address.
      - C(exact) also removes the addresses this module owns on the interface that are not listed.
      - C(absent) removes the listed addresses this module owns (a listed address it does not own is
        left, with a warning), or all it owns when O(addresses) is omitted, and then its state file.
    type: str
    choices: [present, exact, absent]
    default: present
  label:
    description:
      - The label of the IPv4 addresses, which marks them as owned by this task (the interface name, a
        colon and a tag, at most 15 characters, the kernel's limit; for example C(eth0:lvs)).
      - Defaults to C(<interface>:lvs) when that fits in 15 characters; a longer interface name needs an
        explicit label when IPv4 addresses are listed.
      - Two tasks that manage different VIPs on the same interface with O(state=exact) need different
        labels (and different O(state_path) files).
    type: str
  scope:
    description:
      - The scope of the IPv4 addresses. C(host) keeps a real server's VIP on C(lo) from being chosen as
        the source of the host's own connections; C(global) is what a director's front interface needs.
      - Defaults to C(host) on C(lo) and C(global) on every other interface.
      - IPv6 addresses take their scope from the address itself.
      - An owned address with another scope is deleted and added again (the kernel cannot change it in place).
    type: str
    choices: [global, host]
  ipv6_deprecated:
    description:
      - Add IPv6 VIPs with a preferred lifetime of 0 (C(preferred_lft 0), valid forever). A deprecated
        address still accepts connections and answers from them, but is never chosen as the source
        address of new outgoing connections, so a VIP on the same interface (and prefix) as the host's
        own address does not take over the host's health checks, updates and so on.
      - With C(false) they are preferred forever. Owned addresses are changed in place when this changes.
    type: bool
    default: true
  state_path:
    description:
      - The file that records the IPv6 addresses this module owns on O(interface), written atomically
        (its directory is created when missing). One file per interface and per task.
      - Defaults to C(/var/lib/lvs.ipvs/vips/<interface>.json), or
        C(/var/lib/lvs.ipvs/vips/netns-<namespace>/<interface>.json) with O(namespace).
    type: path
  pending_interface:
    description:
      - In check mode, take a missing O(interface) as one an earlier task of the play creates (loading
        C(ipip) creates C(tunl0)), which check mode did not run, and predict every address as added.
        Without it, and always outside check mode, a missing interface is an error.
      - With O(state=absent) a missing interface is never an error (none of its addresses can be left).
    type: bool
    default: false
  link_up:
    description:
      - Set O(interface) up (C(ip link set dev <interface> up)) when it is down, after its addresses are
        added. A tunnel device such as C(tunl0) is created down when its kernel module is loaded, and a
        TUN real server's VIPs on it answer only once it is up.
      - Ignored with O(state=absent); with C(false) a device that is down is left down.
    type: bool
    default: false
  announce:
    description:
      - After adding an address, tell the neighbours on the link that it is here now, so that they update
        a cached entry at once (a VIP moved from another host); for IPv4 a gratuitous ARP request and
        reply, for IPv6 an unsolicited neighbour advertisement to all nodes (override flag).
      - Sent by the module itself (a raw socket; no C(arping) or C(ndisend) needed), once per new address,
        and only on a device with ARP (not C(lo), tunnels or C(NOARP) devices, where it is skipped). A
        failure to send is a warning, not an error (the address is configured).
      - Not for a DR real server's VIPs, which must stay unknown to the neighbours.
    type: bool
    default: false
  namespace:
    description:
      - Network namespace (a name from C(ip netns list), or an absolute path such as C(/proc/1234/ns/net))
        whose interface is managed. Omit for the namespace Ansible runs in.
      - The state file is still written in the file system the module runs in.
    type: str
requirements:
  - pyroute2 (C(python3-pyroute2)) on the managed host.
notes:
  - RV(commands) lists the equivalent C(ip address) command lines, for review and audit (run in
    O(namespace) when one is given).
  - Changing runs on the same O(state_path) are serialized with an C(flock) under C(/run/lock) (bounded
    wait of 120 seconds, then a failure that changes nothing); the interface is read after the lock is taken.
  - Belongs to the C(group/lvs.ipvs.ipvs) action group, so C(module_defaults) for that group (for
    example O(namespace)) apply here too.
attributes:
  check_mode:
    support: full
    description: Reads the interface and the state file and reports what would change, changing nothing.
  diff_mode:
    support: full
    description: Shows the addresses this module owns on the interface, before and after.
  idempotent:
    support: full
    description: A second run with the same arguments changes nothing.
extends_documentation_fragment:
  - lvs.ipvs.ipvs.common_attributes
seealso:
  - name: ip-address(8)
    description: The C(ip address) command, whose options this module mirrors.
    link: https://man7.org/linux/man-pages/man8/ip-address.8.html
  - module: lvs.ipvs.lvs_sysctl
    description: A DR real server must not answer ARP for its VIPs on C(lo) (C(arp_ignore), C(arp_announce)).
"""

EXAMPLES = r"""
- name: Director, the VIPs on the front interface (labelled eth0:lvs); others of this task removed
  lvs.ipvs.lvs_vip:
    interface: eth0
    addresses: [192.0.2.10, 2001:db8::10]
    state: exact
    # Neighbours that cached another host for a VIP update their entry at once.
    announce: true

- name: DR real server, the VIPs on lo (IPv4 scope host)
  lvs.ipvs.lvs_vip:
    interface: lo
    addresses:
      - 192.0.2.10/32
      - 2001:db8::10/128
    state: exact

- name: TUN real server, after modprobe ipip (which creates tunl0, down)
  lvs.ipvs.lvs_vip:
    interface: tunl0
    addresses: [192.0.2.10]
    scope: host
    state: exact
    link_up: true

- name: Decommission, every VIP this module put on lo
  lvs.ipvs.lvs_vip:
    interface: lo
    state: absent
"""

RETURN = r"""
addresses:
  description: The addresses this module owns on the interface after the run (in check mode, would own).
  returned: success
  type: list
  elements: str
  sample: [192.0.2.10/32, 2001:db8::10/128]
added:
  description: The addresses added (in check mode, that would be added).
  returned: success
  type: list
  elements: str
  sample: [2001:db8::10/128]
removed:
  description: The addresses removed (in check mode, that would be removed).
  returned: success
  type: list
  elements: str
  sample: [192.0.2.11/32]
updated:
  description: Owned addresses whose scope or IPv6 deprecation was changed.
  returned: success
  type: list
  elements: str
  sample: []
not_owned:
  description: Listed addresses that are on the interface but not owned by this module, left as they are.
  returned: success
  type: list
  elements: str
  sample: []
commands:
  description: The equivalent C(ip address) command lines, in the order they were (or would be) applied.
  returned: success
  type: list
  elements: str
  sample: ["ip address add 192.0.2.10/32 dev eth0 label eth0:lvs scope global",
           "ip address add 2001:db8::10/128 dev eth0 nodad preferred_lft 0"]
label:
  description: The IPv4 label in use (null when no label fits and no IPv4 address is listed).
  returned: success
  type: str
  sample: eth0:lvs
state_path:
  description: The state file that records the owned IPv6 addresses.
  returned: success
  type: str
  sample: /var/lib/lvs.ipvs/vips/eth0.json
state_file_changed:
  description: Whether the state file was (or in check mode would be) written or removed.
  returned: success
  type: bool
link_set_up:
  description: Whether O(interface) was (in check mode, would be) set up (O(link_up)).
  returned: success
  type: bool
announced:
  description: The new addresses announced to the neighbours with O(announce) (in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: [192.0.2.10/32]
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule
from ansible_collections.lvs.ipvs.plugins.module_utils import _vip as V


def run(module):
    """The task; raises V.VipError naming the field."""
    p = module.params
    interface = V.validate_interface(p["interface"])
    if p["addresses"] is None and p["state"] != "absent":
        # A null list (an undefined variable) must not mean "own nothing" to state=exact.
        raise V.VipError("addresses", "is required with state=%s (a list; [] for none)" % p["state"])
    want = V.validate_addresses(p["addresses"])
    label = V.validate_label(p["label"], interface, any(v["family"] == 4 for v in want))
    scope = V.SCOPES[p["scope"] or ("host" if interface == "lo" else "global")]
    path = p["state_path"] or V.default_state_path(interface, p["namespace"])
    if not V.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"))
    if p["namespace"] is not None:
        V.enter_namespace(p["namespace"])
    if not module.check_mode:
        V.lock(path)
    old_text = V.read_state(path)
    records = V.parse_state(old_text, path)
    rtnl = V.Rtnl()
    try:
        try:
            link = rtnl.link(interface)
            have = rtnl.addresses(link["index"])
        except V.VipError as exc:
            # No such device: nothing of ours is on it (absent), or in check mode one that an earlier
            # task creates and check mode did not run (pending_interface: ipip makes tunl0).
            if exc.field != "interface" or not (p["state"] == "absent" or (module.check_mode and p["pending_interface"])):
                raise
            # A device created by an earlier task (tunl0 from ipip) is created down.
            link, have = {"index": None, "up": False, "arp": False, "mac": None}, []
        result = V.plan(want, have, p["state"], label, records, scope=scope,
                        deprecated=p["ipv6_deprecated"], listed=p["addresses"] is not None)
        ops = result["ops"]
        new_records = set(result["records"])
        new_text = V.render_state(interface, p["namespace"], new_records) if new_records else None
        file_changed = (old_text is None) != (new_text is None) or (old_text is not None and new_records != records)
        set_up = p["link_up"] and p["state"] != "absent" and not link["up"]
        if not module.check_mode:
            if file_changed and new_text is not None:
                V.prepare_state_dir(path)  # proven writable before the first change
            V.apply_ops(rtnl, link["index"], ops)
            if set_up:
                # After the addresses, so the device answers with all of them; refused: they are undone.
                try:
                    rtnl.set_up(link["index"])
                except V.VipError as exc:
                    raise V.VipError("link_up", str(exc).split(": ", 1)[1] + V.undo(rtnl, link["index"], ops)) from None
            if file_changed:
                try:
                    if new_text is None:
                        V.remove_state(path)
                    else:
                        V.write_state(path, new_text)
                except OSError as exc:
                    raise V.VipError("state_path", "cannot write %s: %s%s" % (
                        path, exc.strerror or exc, V.undo(rtnl, link["index"], ops))) from None
    finally:
        rtnl.close()
    announced = []
    if p["announce"] and link["arp"] and link["mac"]:
        for op in ops:
            if op["op"] in ("add", "replace"):
                if not module.check_mode:
                    try:
                        V.announce(link, op)
                    except OSError as exc:
                        module.warn("announce: %s was added but could not be announced: %s" % (V.text(op), exc.strerror or exc))
                        continue
                announced.append(V.text(op))
    for addr in result["not_owned"]:
        module.warn("%s: %s is already on %s but not owned by this module (%s): left as it is"
                    % (addr["field"], V.text(addr), interface,
                       "label %s" % addr.get("label") if addr["family"] == 4 else "not recorded in %s" % path))
    if not link["up"] and not set_up and any(op["op"] != "del" for op in ops):
        module.warn("interface: %s is down; its addresses answer once it is up" % interface)
    out = dict(
        changed=bool(ops) or file_changed or set_up,
        addresses=[V.text(a) for a in result["owned_after"]],
        added=[V.text(op) for op in ops if op["op"] == "add"],
        removed=[V.text(op) for op in ops if op["op"] == "del"],
        updated=[V.text(op) for op in ops if op["op"] in ("change", "replace")],
        not_owned=[V.text(a) for a in result["not_owned"]],
        commands=V.commands(ops, interface) + (["ip link set dev %s up" % interface] if set_up else []),
        label=label,
        state_path=path,
        state_file_changed=file_changed,
        announced=announced,
        link_set_up=set_up,
    )
    if module._diff:  # pylint: disable=protected-access
        header = "%s: addresses owned by lvs_vip" % interface
        out["diff"] = dict(before="".join(V.text(a) + "\n" for a in result["owned_before"]),
                           after="".join(a + "\n" for a in out["addresses"]),
                           before_header=header, after_header=header)
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interface=dict(type="str", required=True),
            addresses=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "exact", "absent"], default="present"),
            label=dict(type="str"),
            scope=dict(type="str", choices=["global", "host"]),
            ipv6_deprecated=dict(type="bool", default=True),
            state_path=dict(type="path"),
            announce=dict(type="bool", default=False),
            link_up=dict(type="bool", default=False),
            pending_interface=dict(type="bool", default=False),
            namespace=dict(type="str"),
        ),
        required_if=[("state", "present", ("addresses",)), ("state", "exact", ("addresses",))],
        supports_check_mode=True,
    )
    try:
        out = run(module)
    except V.VipError as exc:
        module.fail_json(msg=str(exc), field=exc.field)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
