#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lvs_probe
short_description: Send N requests to a virtual service and report which real server answered
version_added: 1.0.0
description:
  - Sends O(count) requests (HTTP GET, or TCP connections) to a virtual IP from the host the task
    runs on (or from another network namespace of it) and returns the split of the answers per
    real server and the failures, so that playbooks and molecule verify steps can assert traffic
    distribution and availability.
  - Each request is a new TCP connection, so each one is scheduled by the director.
  - A real server is identified by its answer (the first line of the HTTP body, an HTTP header, or
    the first line a TCP service sends), or by the director's counters (O(director_stats)).
  - Changes nothing; it only sends traffic.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  address:
    description: The virtual IP address (IPv4 or IPv6) to send the requests to.
    type: str
    required: true
  port:
    description: The virtual port.
    type: int
    default: 80
  protocol:
    description: C(http) sends C(GET) requests (HTTP/1.0, one per connection); C(tcp) opens connections.
    type: str
    choices: [http, tcp]
    default: http
  count:
    description: How many requests to send (1 to 100000).
    type: int
    default: 10
  interval:
    description: Seconds to wait between two requests.
    type: float
    default: 0
  timeout:
    description: Seconds one request may take (connect and answer).
    type: float
    default: 2
  path:
    description: The HTTP path.
    type: str
    default: /
  host_header:
    description: The HTTP C(Host) header; the address when omitted.
    type: str
  expect_status:
    description: HTTP status codes that count as success; an empty list accepts any status.
    type: list
    elements: int
    default: [200]
  identify:
    description:
      - How a real server is recognised. C(body) the first non-empty line of the HTTP body;
        C(header) the value of the header O(identify_header); C(status) the HTTP status;
        C(line) (tcp) the first line the service sends (after O(send)); C(connect) (tcp) the
        connection alone (all answers count as one; use O(director_stats) for the split).
      - Defaults to C(body) for http and C(line) for tcp.
    type: str
    choices: [body, header, status, line, connect]
  identify_header:
    description: Header that names the real server, with O(identify=header).
    type: str
    default: X-Real-Server
  send:
    description: Text to send after connecting, with O(protocol=tcp) (for example C(PING\n)).
    type: str
  source:
    description: Source address to send from.
    type: str
  namespace:
    description:
      - Network namespace (name under C(/run/netns) or a path) to send the requests from, instead of
        the one the task runs in. Unlike for the table modules, this is the client side.
    type: str
  weights:
    description:
      - "Expected weight of each identity (as O(identify) reports it), for example C({rs1: 3, rs2: 1}).
        Adds C(expected) and C(deviation) to the result; O(max_deviation) turns it into a check."
    type: dict
  max_deviation:
    description:
      - Fail when an identity's count differs from its weighted share by more than this many
        requests (with O(weights)). C(0) demands the exact split (wrr over a multiple of the weight sum).
    type: float
  max_failures:
    description: Fail when more than this many requests failed. Omit to only report failures.
    type: int
  director_stats:
    description:
      - Also read the IPVS counters of the director before and after, and return C(stats_split), the
        new connections per real server of the services with this address and port. Needs the
        director's table to be readable from here (the task runs on the director, or
        O(director_namespace) names its namespace on this machine).
      - The kernel (before 6.2) refreshes the exported counters every 2 seconds, so the module waits
        2.5 s before its first read (traffic just before the task is counted there, not in the split)
        and 2.5 s after the last request before it reads them again.
    type: bool
    default: false
  director_namespace:
    description: Network namespace of the director whose counters O(director_stats) reads.
    type: str
extends_documentation_fragment:
  - lvs.ipvs.ipvs.info_attributes
requirements:
  - Python 3.9+ on the host sending the requests.
  - For O(director_stats), a kernel with IPVS on the director. Its counters are read like
    M(lvs.ipvs.ipvs_info) reads them, with the collection's own netlink code (no pyroute2).
notes:
  - The module belongs to the C(group/lvs.ipvs.ipvs) action group; a C(namespace) set there for the
    table modules applies here too, which is rarely what a client wants. Set O(namespace) on the task.
seealso:
  - module: lvs.ipvs.ipvs_info
  - module: lvs.ipvs.ipvs_real_server
    description: Drain a real server (weight 0) before maintenance; lvs_probe checks the traffic went elsewhere.
"""

EXAMPLES = r"""
- name: Sixty requests to the VIP from the client; the real servers answer their own name
  lvs.ipvs.lvs_probe:
    address: 192.0.2.10
    count: 60
    weights: {rs1: 3, rs2: 2, rs3: 1}
    max_deviation: 0
    max_failures: 0
  delegate_to: client
  register: probe

- name: Show the split
  ansible.builtin.debug:
    msg: "{{ probe.split }} ({{ probe.failed_requests }} failed)"

- name: TCP connections counted by the director's own counters (run on the director)
  lvs.ipvs.lvs_probe:
    address: 192.0.2.10
    port: 443
    protocol: tcp
    identify: connect
    count: 20
    director_stats: true
"""

RETURN = r"""
requests:
  description: Requests sent.
  returned: always
  type: int
  sample: 60
succeeded:
  description: Requests answered as expected.
  returned: always
  type: int
  sample: 60
failed_requests:
  description:
    - Requests that failed (no connection, timeout, unexpected status, no identity).
    - Not C(failed), which Ansible reserves for the task's own failure.
  returned: always
  type: int
  sample: 0
split:
  description: Successful requests per identity (real server).
  returned: always
  type: dict
  sample: {"rs1": 30, "rs2": 20, "rs3": 10}
errors:
  description: Failed requests per error text.
  returned: always
  type: dict
  sample: {"connect timed out": 2}
failures:
  description: The first 20 failures, with the request number (1-based).
  returned: always
  type: list
  elements: dict
  sample: [{"request": 7, "error": "connect: Connection refused"}]
sequence:
  description: Identity of each request in order (null for a failure).
  returned: always
  type: list
  elements: str
latency:
  description: Minimum, median and maximum seconds per request.
  returned: always
  type: dict
  sample: {"min": 0.0012, "median": 0.0019, "max": 0.0101}
expected:
  description: The weighted share of each identity in O(weights).
  returned: when O(weights) is set
  type: dict
  sample: {"rs1": 30.0, "rs2": 20.0, "rs3": 10.0}
deviation:
  description: Count minus expected share, per identity in O(weights).
  returned: when O(weights) is set
  type: dict
unexpected:
  description: Identities that answered but are not in O(weights).
  returned: when O(weights) is set
  type: list
  elements: str
stats_split:
  description: New connections per real server (C(address:port)) counted by the director.
  returned: when O(director_stats) is true
  type: dict
  sample: {"10.10.0.11:8080": 30, "10.10.0.12:8080": 20}
duration:
  description: Seconds the requests took in all.
  returned: always
  type: float
"""

import ipaddress
import time

from ansible_collections.lvs.ipvs.plugins.module_utils._module_base import Module as AnsibleModule

from ansible_collections.lvs.ipvs.plugins.module_utils import _probe as probe


STATS_SETTLE_S = 2.5  # one refresh period of the kernel's exported counters, plus margin


def _stats(module, namespace):
    """The director's table with counters (entering ``namespace`` for the read, then coming back)."""
    from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_netlink as netlink  # only for director_stats

    back = probe.enter_namespace(namespace) if namespace is not None else None
    try:
        adapter = netlink.IPVSAdapter(run=module.run_command)
        try:
            return adapter.dump(stats=True)
        finally:
            adapter.close()
    except netlink.IPVSKernelError as exc:
        module.fail_json(msg="director_stats: %s" % exc)
    finally:
        if back is not None:
            probe.setns(back)
            probe.os.close(back)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            address=dict(type="str", required=True),
            port=dict(type="int", default=80),
            protocol=dict(type="str", choices=["http", "tcp"], default="http"),
            count=dict(type="int", default=10),
            interval=dict(type="float", default=0.0),
            timeout=dict(type="float", default=2.0),
            path=dict(type="str", default="/"),
            host_header=dict(type="str"),
            expect_status=dict(type="list", elements="int", default=[200]),
            identify=dict(type="str", choices=["body", "header", "status", "line", "connect"]),
            identify_header=dict(type="str", default="X-Real-Server"),
            send=dict(type="str"),
            source=dict(type="str"),
            namespace=dict(type="str"),
            weights=dict(type="dict"),
            max_deviation=dict(type="float"),
            max_failures=dict(type="int"),
            director_stats=dict(type="bool", default=False),
            director_namespace=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = dict(module.params)
    try:
        p["address"] = str(ipaddress.ip_address(p["address"].strip("[]")))
    except ValueError:
        module.fail_json(msg="address: %r is not an IPv4 or IPv6 address" % p["address"])
    if not 1 <= p["port"] <= 65535:
        module.fail_json(msg="port: %d is out of range 1..65535" % p["port"])
    if not 1 <= p["count"] <= 100000:
        module.fail_json(msg="count: %d is out of range 1..100000" % p["count"])
    if not 0 < p["timeout"] <= 3600:
        module.fail_json(msg="timeout: %s is out of range (0, 3600]" % p["timeout"])
    if not 0 <= p["interval"] <= 3600:
        module.fail_json(msg="interval: %s is out of range 0..3600" % p["interval"])
    if p["identify"] is None:
        p["identify"] = "body" if p["protocol"] == "http" else "line"
    allowed = {"http": ("body", "header", "status"), "tcp": ("line", "connect")}[p["protocol"]]
    if p["identify"] not in allowed:
        module.fail_json(msg="identify: %s does not apply to protocol %s (use %s)" % (p["identify"], p["protocol"], " or ".join(allowed)))
    if not p["path"].startswith("/") or any(c in p["path"] for c in " \r\n"):
        module.fail_json(msg="path: %r must start with / and contain no spaces or newlines" % p["path"])
    if p["send"] is not None and p["protocol"] != "tcp":
        module.fail_json(msg="send: only applies to protocol tcp")
    weights = None
    if p["weights"] is not None:
        weights = {}
        for name, value in p["weights"].items():
            try:
                weights[str(name)] = int(value)
            except (TypeError, ValueError):
                module.fail_json(msg="weights.%s: %r is not an integer" % (name, value))
    if p["max_deviation"] is not None and weights is None:
        module.fail_json(msg="max_deviation: needs weights")

    def same_service(svc):
        return svc.get("address") == p["address"] and svc.get("port") == p["port"]

    before = None
    if p["director_stats"]:
        # The exported counters lag up to one estimator period (2 s): let traffic sent just before
        # this task reach them, or it would count in the split.
        time.sleep(STATS_SETTLE_S)
        before = _stats(module, p["director_namespace"])
    back = None
    try:
        if p["namespace"] is not None:
            back = probe.enter_namespace(p["namespace"])
        started = time.monotonic()
        results = probe.run(p)
        duration = time.monotonic() - started
    except probe.ProbeError as exc:
        module.fail_json(msg=str(exc))
    finally:
        if back is not None:
            probe.setns(back)
            probe.os.close(back)
    result = probe.summarize(results, weights)
    result.update(changed=False, duration=round(duration, 3))
    if p["director_stats"]:
        time.sleep(STATS_SETTLE_S)
        result["stats_split"] = probe.stats_split(before, _stats(module, p["director_namespace"]), same_service)
    problems = []
    if p["max_failures"] is not None and result["failed_requests"] > p["max_failures"]:
        problems.append("%d of %d requests failed (max_failures %d): %s"
                        % (result["failed_requests"], result["requests"], p["max_failures"], result["errors"]))
    if p["max_deviation"] is not None:
        off = {k: v for k, v in result["deviation"].items() if abs(v) > p["max_deviation"]}
        if off or result["unexpected"]:
            problems.append("split %s differs from the weights %s by more than %s (deviation %s%s)"
                            % (result["split"], weights, p["max_deviation"], off,
                               ", unexpected %s" % result["unexpected"] if result["unexpected"] else ""))
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
