#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ipvs_service
short_description: Manage one IPVS virtual service
version_added: 1.0.0
description:
  - Creates, edits in place or removes one virtual service of the kernel's IPVS table (the
    equivalent of C(ipvsadm -A), C(-E) and C(-D)), over netlink.
  - A TCP, UDP or SCTP service is identified by O(protocol), O(address) and O(port); a
    firewall-mark service by O(fwmark) and O(family).
  - An existing service whose options differ is changed in place, so its connections and real
    servers are kept. Real servers are managed with M(lvs.ipvs.ipvs_real_server) and are left
    untouched here, except that O(state=absent) removes the service with its real servers.
  - All input is validated before anything is sent to the kernel.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  state:
    description: Whether the service should exist.
    type: str
    choices: [present, absent]
    default: present
  protocol:
    description:
      - Transport protocol of an address service (C(-t), C(-u), C(--sctp-service)); C(tcp) when omitted.
      - Not used with O(fwmark) (a fwmark service matches marked packets of any protocol).
    type: str
    choices: [tcp, udp, sctp]
  address:
    description: Virtual IPv4 or IPv6 address. Mutually exclusive with O(fwmark).
    type: str
  port:
    description:
      - Virtual port. C(0) means every port and requires a persistent service.
      - Required with O(address).
    type: int
  fwmark:
    description: Firewall mark (1 to 4294967295) of a fwmark service (C(-f)). Mutually exclusive with O(address).
    type: int
  family:
    description: Address family of a fwmark service (C(-6) for C(ipv6)). Derived from O(address) otherwise.
    type: str
    choices: [ipv4, ipv6]
  scheduler:
    description:
      - Scheduling algorithm (C(-s)). A scheduler module the kernel has not loaded is loaded
        (C(modprobe ip_vs_NAME)); if the kernel does not have it the task fails and says so.
    type: str
    choices: [rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos]
    default: wlc
  scheduler_flags:
    description:
      - Scheduler flags (C(-b)). C(sh-fallback) and C(sh-port) only with C(sh), C(mh-fallback)
        and C(mh-port) only with C(mh); C(flag-1) to C(flag-3) with any scheduler.
    type: list
    elements: str
    default: []
  persistence_timeout:
    description:
      - Persistence timeout in seconds (C(-p)); C(0) makes the service non-persistent.
      - ipvsadm's default for a bare C(-p) is 360.
    type: int
    default: 0
  persistence_netmask:
    description:
      - Granularity of persistence (C(-M)). For IPv4 a netmask such as C(255.255.255.0) or a
        prefix length such as C(24) (unlike C(ipvsadm -M 24), which means the mask 0.0.0.24); for
        IPv6 a prefix length from 1 to 128.
      - Only for persistent services. Defaults to a single client address.
    type: str
  persistence_engine:
    description:
      - Persistence engine (C(--pe)). It only takes effect on a persistent service, but the kernel
        accepts it on any service, so this module does too.
    type: str
    choices: [sip]
  one_packet:
    description: One-packet scheduling (C(-o)), for UDP and fwmark services.
    type: bool
    default: false
requirements:
  - Nothing beyond Python on the managed host (no pyroute2, no ipvsadm).
extends_documentation_fragment:
  - lvs.ipvs.ipvs
  - lvs.ipvs.ipvs.attributes
seealso:
  - module: lvs.ipvs.ipvs_real_server
  - module: lvs.ipvs.ipvs_table
  - module: lvs.ipvs.ipvs_info
"""

EXAMPLES = r"""
- name: A round-robin HTTP service
  lvs.ipvs.ipvs_service:
    address: 192.0.2.10
    port: 80
    scheduler: rr

- name: Persistent HTTPS with /24 client granularity
  lvs.ipvs.ipvs_service:
    address: 192.0.2.10
    port: 443
    scheduler: wlc
    persistence_timeout: 600
    persistence_netmask: 255.255.255.0

- name: An IPv6 fwmark service with source hashing and fallback
  lvs.ipvs.ipvs_service:
    fwmark: 10
    family: ipv6
    scheduler: sh
    scheduler_flags: [sh-fallback, sh-port]

- name: SIP over UDP with one-packet scheduling and the SIP persistence engine
  lvs.ipvs.ipvs_service:
    protocol: udp
    address: 192.0.2.20
    port: 5060
    persistence_timeout: 60
    persistence_engine: sip
    one_packet: true

- name: Remove a service (and its real servers) in another network namespace
  lvs.ipvs.ipvs_service:
    address: 192.0.2.10
    port: 80
    namespace: lb1
    state: absent
"""

RETURN = r"""
before:
  description: The service as it was (with its real servers), or null when it did not exist.
  returned: always
  type: dict
  sample: {"family": "ipv4", "protocol": "tcp", "address": "192.0.2.10", "port": 80, "fwmark": null,
           "scheduler": "wlc", "scheduler_flags": [], "persistence_timeout": 0,
           "persistence_netmask": "255.255.255.255", "persistence_engine": null, "one_packet": false,
           "real_servers": []}
after:
  description: The service afterwards (in check mode, as predicted), or null when absent.
  returned: always
  type: dict
  sample: {"family": "ipv4", "protocol": "tcp", "address": "192.0.2.10", "port": 80, "fwmark": null,
           "scheduler": "rr", "scheduler_flags": [], "persistence_timeout": 0,
           "persistence_netmask": "255.255.255.255", "persistence_engine": null, "one_packet": false,
           "real_servers": []}
commands:
  description: The equivalent ipvsadm command lines of the change (empty when nothing changed).
  returned: always
  type: list
  elements: str
  sample: ["ipvsadm -E -t 192.0.2.10:80 -s rr"]
"""

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_module as common
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import normalize_service, service_key
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import plan

SERVICE_OPTIONS = ("protocol", "address", "port", "fwmark", "family", "scheduler", "scheduler_flags",
                   "persistence_timeout", "persistence_netmask", "persistence_engine", "one_packet")


def _find(table, key):
    return next((s for s in table if service_key(s) == key), None)


def _one(svc):
    return [svc] if svc is not None else []


def main():
    argument_spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        protocol=dict(type="str", choices=["tcp", "udp", "sctp"]),
        address=dict(type="str"),
        port=dict(type="int"),
        fwmark=dict(type="int"),
        family=dict(type="str", choices=["ipv4", "ipv6"]),
        scheduler=dict(type="str", default="wlc",
                       choices=["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]),
        scheduler_flags=dict(type="list", elements="str", default=[]),
        persistence_timeout=dict(type="int", default=0),
        persistence_netmask=dict(type="str"),
        persistence_engine=dict(type="str", choices=["sip"]),
        one_packet=dict(type="bool", default=False),
        **common.NAMESPACE_SPEC
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("fwmark", "address"), ("fwmark", "port")],
        required_one_of=[("fwmark", "address")],
        required_by={"address": "port"},
        supports_check_mode=True,
    )
    raw = {k: module.params[k] for k in SERVICE_OPTIONS}
    want = common.validated(module, normalize_service, raw, "", False)
    state = module.params["state"]

    adapter = common.connect(module, lock=not module.check_mode, bulk=False)
    # Only this service is read (one get and one dump of its real servers), never the whole table:
    # the plan of one service against the table part that holds it is the plan against the table.
    have = _one(adapter.service(want))
    ops = common.validated(module, plan, [want], have, "deleted" if state == "absent" else "merged")
    after_table, result = common.execute(module, adapter, have, ops, read_back=lambda: _one(adapter.service(want)))
    key = service_key(want)
    before, after = _find(have, key), _find(after_table, key)
    result.update(before=before, after=after)
    if module._diff:
        result["diff"] = common.diff([before] if before else [], [after] if after else [], "ipvs service")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
