#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ipvs_real_server
short_description: Manage one real server of an IPVS virtual service
version_added: 1.0.0
description:
  - Adds, edits in place or removes one real server (destination) of an existing virtual
    service (the equivalent of C(ipvsadm -a), C(-e) and C(-d)), over netlink.
  - An existing real server whose options differ is changed in place (weight, thresholds,
    forwarding), so its connections are kept. Set O(weight=0) to quiesce a server.
  - All input is validated before anything is sent to the kernel.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  state:
    description: Whether the real server should exist.
    type: str
    choices: [present, absent]
    default: present
  service:
    description:
      - The virtual service, which must exist (see M(lvs.ipvs.ipvs_service)). Either
        O(service.address) and O(service.port) (with O(service.protocol)), or O(service.fwmark)
        (with O(service.family)).
    type: dict
    required: true
    suboptions:
      protocol:
        description: Protocol of an address service; C(tcp) when omitted.
        type: str
        choices: [tcp, udp, sctp]
      address:
        description: Virtual address.
        type: str
      port:
        description: Virtual port.
        type: int
      fwmark:
        description: Firewall mark of a fwmark service.
        type: int
      family:
        description: Family of a fwmark service.
        type: str
        choices: [ipv4, ipv6]
  address:
    description: Address of the real server (IPv4 or IPv6; another family than the service's only with O(forwarding=tunnel)).
    type: str
    required: true
  port:
    description:
      - Port of the real server. Defaults to the service port; for fwmark services C(0), which
        keeps the destination port of each packet.
      - Only O(forwarding=nat) can map to a different port (ipvsadm silently replaces the port of
        a C(dr) or C(tunnel) real server with the service port; this module refuses it instead).
    type: int
  forwarding:
    description: Packet forwarding method (C(-m), C(-g), C(-i)).
    type: str
    choices: [nat, dr, tunnel]
    default: dr
  weight:
    description: Weight (C(-w)), 0 to 65535. C(0) quiesces the server (no new connections).
    type: int
    default: 1
  upper_threshold:
    description: Upper connection threshold (C(-x)); C(0) means no limit.
    type: int
    default: 0
  lower_threshold:
    description: Lower connection threshold (C(-y)); must not exceed O(upper_threshold).
    type: int
    default: 0
  tunnel_type:
    description: Tunnel encapsulation (C(--tun-type)), only with O(forwarding=tunnel); C(ipip) when omitted.
    type: str
    choices: [ipip, gue, gre]
  tunnel_port:
    description: Destination UDP port of GUE encapsulation (C(--tun-port)); required with O(tunnel_type=gue).
    type: int
  tunnel_checksum:
    description:
      - Tunnel checksum mode (C(--tun-nocsum), C(--tun-csum), C(--tun-remcsum)) for C(gue)
        (all three) and C(gre) (C(nocsum), C(csum)); C(nocsum) when omitted.
    type: str
    choices: [nocsum, csum, remcsum]
requirements:
  - Nothing beyond Python on the managed host (no pyroute2, no ipvsadm).
extends_documentation_fragment:
  - lvs.ipvs.ipvs
  - lvs.ipvs.ipvs.attributes
seealso:
  - module: lvs.ipvs.ipvs_service
  - module: lvs.ipvs.ipvs_table
  - module: lvs.ipvs.ipvs_info
"""

EXAMPLES = r"""
- name: A NAT real server on another port
  lvs.ipvs.ipvs_real_server:
    service: {address: 192.0.2.10, port: 80}
    address: 10.0.0.11
    port: 8080
    forwarding: nat
    weight: 3

- name: Quiesce a direct-routing real server (no new connections)
  lvs.ipvs.ipvs_real_server:
    service: {address: 192.0.2.10, port: 80}
    address: 10.0.0.12
    forwarding: dr
    weight: 0

- name: A GUE tunnel real server with checksums, on an IPv6 fwmark service
  lvs.ipvs.ipvs_real_server:
    service: {fwmark: 10, family: ipv6}
    address: 2001:db8::21
    port: 80
    forwarding: tunnel
    tunnel_type: gue
    tunnel_port: 6080
    tunnel_checksum: csum

- name: Remove a real server
  lvs.ipvs.ipvs_real_server:
    service: {protocol: udp, address: 192.0.2.20, port: 53}
    address: 10.0.0.13
    state: absent
"""

RETURN = r"""
before:
  description: The real server as it was, or null when it did not exist.
  returned: always
  type: dict
  sample: {"address": "10.0.0.11", "port": 8080, "forwarding": "nat", "weight": 1, "upper_threshold": 0,
           "lower_threshold": 0, "tunnel_type": null, "tunnel_port": null, "tunnel_checksum": null}
after:
  description: The real server afterwards (in check mode, as predicted), or null when absent.
  returned: always
  type: dict
  sample: {"address": "10.0.0.11", "port": 8080, "forwarding": "nat", "weight": 3, "upper_threshold": 0,
           "lower_threshold": 0, "tunnel_type": null, "tunnel_port": null, "tunnel_checksum": null}
service:
  description: The virtual service, as it is in the kernel (null if it does not exist).
  returned: always
  type: dict
commands:
  description: The equivalent ipvsadm command lines of the change (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ipvsadm -e -t 192.0.2.10:80 -r 10.0.0.11:8080 -m -w 3"]
"""

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_module as common
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    normalize_real_server,
    normalize_service,
    real_server_key,
    service_config,
    service_key,
    service_label,
)
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import commands
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import ADD_REAL_SERVER, plan_real_server

REAL_SERVER_OPTIONS = ("address", "port", "forwarding", "weight", "upper_threshold", "lower_threshold",
                       "tunnel_type", "tunnel_port", "tunnel_checksum")


def _find(items, keyfunc, key):
    return next((i for i in items if keyfunc(i) == key), None)


def _one(svc):
    return [svc] if svc is not None else []


def main():
    argument_spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        service=dict(type="dict", required=True, options=dict(
            protocol=dict(type="str", choices=["tcp", "udp", "sctp"]),
            address=dict(type="str"),
            port=dict(type="int"),
            fwmark=dict(type="int"),
            family=dict(type="str", choices=["ipv4", "ipv6"]),
        ), mutually_exclusive=[("fwmark", "address"), ("fwmark", "port")], required_one_of=[("fwmark", "address")]),
        address=dict(type="str", required=True),
        port=dict(type="int"),
        forwarding=dict(type="str", choices=["nat", "dr", "tunnel"], default="dr"),
        weight=dict(type="int", default=1),
        upper_threshold=dict(type="int", default=0),
        lower_threshold=dict(type="int", default=0),
        tunnel_type=dict(type="str", choices=["ipip", "gue", "gre"]),
        tunnel_port=dict(type="int"),
        tunnel_checksum=dict(type="str", choices=["nocsum", "csum", "remcsum"]),
        **common.NAMESPACE_SPEC
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    state = module.params["state"]
    # The service options only identify it: validate them as a persistent service, so port 0 passes.
    svc_id = common.validated(module, normalize_service, dict(module.params["service"], persistence_timeout=1), "service", False)
    svc_key = service_key(svc_id)
    raw = {k: module.params[k] for k in REAL_SERVER_OPTIONS}
    # Validate before touching anything, even when the service turns out to be missing.
    common.validated(module, normalize_real_server, raw, svc_id, "")

    adapter = common.connect(module, lock=not module.check_mode, bulk=False)
    # Only the one service is read (a get and a dump of its real servers), never the whole table.
    svc = adapter.service(svc_id)
    have = _one(svc)
    if svc is None:
        label = service_label(svc_id)
        if state == "absent":
            module.exit_json(changed=False, before=None, after=None, service=None, commands=[])
        if not module.check_mode:
            module.fail_json(msg="service: %s does not exist; create it first with lvs.ipvs.ipvs_service" % label)
        module.warn("service %s does not exist yet: a real run fails unless an earlier task creates it" % label)
        ops = [{"action": ADD_REAL_SERVER, "service": svc_id, "real_server": normalize_real_server(raw, svc_id, "")}]
        module.exit_json(changed=True, before=None, after=ops[0]["real_server"], service=None, commands=commands(ops))
    want = common.validated(module, normalize_real_server, raw, svc, "")
    key = real_server_key(want)
    ops = plan_real_server(svc, want, state)
    after_table, result = common.execute(module, adapter, have, ops, read_back=lambda: _one(adapter.service(svc_id)))
    svc_after = _find(after_table, service_key, svc_key)
    before = _find(svc["real_servers"], real_server_key, key)
    after = _find(svc_after["real_servers"], real_server_key, key) if svc_after else None
    result.update(before=before, after=after, service=dict(service_config(svc_after or svc)))
    if module._diff:
        result["diff"] = common.diff([svc], [svc_after] if svc_after else [], "ipvs real server")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
