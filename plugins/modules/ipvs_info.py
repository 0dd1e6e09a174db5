#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ipvs_info
short_description: Read the IPVS table, its counters and its connections
version_added: 1.0.0
description:
  - Returns the kernel's whole IPVS table in the shape the other modules of the collection
    take (so C(services) can be fed back as configuration), optionally with counters and
    rates (C(ipvsadm -Ln --stats --rate)) and the connection entries (C(ipvsadm -Lnc)),
    plus the timeouts and the connection-sync daemons.
  - Changes nothing.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  stats:
    description: Add per-service and per-real-server counters, rates and connection counts.
    type: bool
    default: true
  connections:
    description: Add the connection entries (C(ipvsadm -Lnc)).
    type: bool
    default: false
extends_documentation_fragment:
  - lvs.ipvs.ipvs
  - lvs.ipvs.ipvs.info_attributes
seealso:
  - module: lvs.ipvs.ipvs_table
  - module: lvs.ipvs.ipvs_service
  - module: lvs.ipvs.ipvs_real_server
  - module: lvs.ipvs.ipvs_config
  - module: lvs.ipvs.lvs_probe
"""

EXAMPLES = r"""
- name: Read the table with counters
  lvs.ipvs.ipvs_info:
  register: ipvs

- name: Show each service and how many real servers it has
  ansible.builtin.debug:
    msg: "{{ item.protocol }} {{ item.address }}:{{ item.port }} -> {{ item.real_servers | length }} real servers"
  loop: "{{ ipvs.services | rejectattr('fwmark') }}"

- name: Connections of the table in namespace lb1
  lvs.ipvs.ipvs_info:
    namespace: lb1
    stats: false
    connections: true
  register: conns
"""

RETURN = r"""
services:
  description:
    - Every virtual service with its C(real_servers), sorted as C(ipvsadm -Ln) sorts them.
    - With O(stats), services and real servers carry C(stats) (conns, inpkts, outpkts, inbytes,
      outbytes) and C(rates) (cps, inpps, outpps, inbps, outbps); real servers also carry
      C(active_connections), C(inactive_connections) and C(persistent_connections).
    - The kernel refreshes the exported counters and rates every 2 seconds.
  returned: always
  type: list
  elements: dict
  sample:
    - family: ipv4
      protocol: tcp
      address: 192.0.2.10
      port: 80
      fwmark: null
      scheduler: rr
      scheduler_flags: []
      persistence_timeout: 0
      persistence_netmask: 255.255.255.255
      persistence_engine: null
      one_packet: false
      real_servers:
        - {address: 10.0.0.11, port: 80, forwarding: nat, weight: 1, upper_threshold: 0, lower_threshold: 0,
           tunnel_type: null, tunnel_port: null, tunnel_checksum: null}
saved:
  description:
    - The table in C(ipvsadm-save -n) format, restorable without loss with C(ipvsadm-restore)
      (real-server thresholds kept as C(-x) and C(-y), fwmarks printed unsigned).
  returned: always
  type: str
  sample: "-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 10.0.0.11:80 -m -w 1\n"
connections:
  description: Connection entries, when O(connections) is true.
  returned: when O(connections) is true
  type: list
  elements: dict
  sample:
    - protocol: tcp
      client: {address: 198.51.100.7, port: 40312}
      virtual: {address: 192.0.2.10, port: 80}
      real_server: {address: 10.0.0.11, port: 80}
      state: ESTABLISHED
      expires: 899
      persistence_engine: null
      persistence_data: null
timeouts:
  description: Connection timeouts in seconds (C(ipvsadm -L --timeout)).
  returned: always
  type: dict
  sample: {"tcp": 900, "tcpfin": 120, "udp": 300}
sync_daemons:
  description: Running connection-sync daemons (C(ipvsadm -L --daemon)), as M(lvs.ipvs.ipvs_config) takes them.
  returned: always
  type: list
  elements: dict
  sample: [{"state": "master", "interface": "eth1", "syncid": 10, "sync_maxlen": 1472, "mcast_group": "224.0.0.81",
            "mcast_port": 8848, "mcast_ttl": 1}]
version:
  description: The IPVS version line of C(/proc/net/ip_vs), when readable.
  returned: always
  type: str
  sample: IP Virtual Server version 1.2.1 (size=4096)
"""

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_module as common
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_ipvsadm import render_restore
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_netlink import connections


def _version():
    try:
        with open("/proc/net/ip_vs") as handle:
            return handle.readline().strip()
    except OSError:
        return ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            stats=dict(type="bool", default=True),
            connections=dict(type="bool", default=False),
            **common.NAMESPACE_SPEC
        ),
        supports_check_mode=True,
    )
    adapter = common.connect(module)
    services = adapter.dump(stats=module.params["stats"])
    result = dict(changed=False, services=services, saved=render_restore(services), version=_version(),
                  timeouts=adapter.timeouts(), sync_daemons=adapter.daemons())
    if module.params["connections"]:
        result["connections"] = connections()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
