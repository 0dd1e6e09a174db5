# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fields of a virtual service and of a real server, declared once.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Each field: its Ansible type, choices (from the model's own constants) and one description.
The roles' ``meta/argument_specs.yml`` are generated from this (scripts/role_specs.py, checked
by tests/unit/test_role_specs.py), so a service's fields are written here and nowhere else.
"""

from __future__ import annotations

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    DEFAULT_SCHEDULER,
    PERSISTENCE_ENGINES,
    PROTOCOLS,
    SCHEDULERS,
    TUNNEL_CHECKSUMS,
    TUNNEL_TYPES,
)

SERVICE_OPTIONS = {
    "protocol": {"type": "str", "choices": sorted(PROTOCOLS),
                 "description": ["Protocol of an address service; C(tcp) when omitted."]},
    "address": {"type": "str",
                "description": ["Virtual address (the VIP), IPv4 or IPv6. Mutually exclusive with C(fwmark)."]},
    "port": {"type": "int", "description": ["Virtual port (C(0) for all ports, persistent services only)."]},
    "fwmark": {"type": "int", "description": ["Firewall mark of a fwmark service (1..4294967295)."]},
    "family": {"type": "str", "choices": ["ipv4", "ipv6"],
               "description": ["Family of a fwmark service (an address service has its address's)."]},
    "scheduler": {"type": "str", "choices": list(SCHEDULERS),
                  "description": ["Scheduler; C(%s) when omitted." % DEFAULT_SCHEDULER]},
    "scheduler_flags": {"type": "list", "elements": "str",
                        "description": ["Scheduler flags (C(sh-fallback), C(sh-port), C(mh-fallback), C(mh-port), C(flag-1..3))."]},
    "persistence_timeout": {"type": "int", "description": ["Persistence timeout in seconds; C(0) for none."]},
    "persistence_netmask": {"type": "str", "description": ["Persistence granularity (a netmask, or a prefix length for IPv6)."]},
    "persistence_engine": {"type": "str", "choices": list(PERSISTENCE_ENGINES), "description": ["Persistence engine."]},
    "one_packet": {"type": "bool", "description": ["One-packet scheduling (UDP and fwmark services)."]},
}

REAL_SERVER_OPTIONS = {
    "address": {"type": "str", "required": True, "description": ["Address of the real server."]},
    "port": {"type": "int", "description": ["Port of the real server; the service port when omitted."]},
    "weight": {"type": "int", "description": ["Weight 0..65535 (C(1) when omitted); C(0) quiesces."]},
    "upper_threshold": {"type": "int", "description": ["Upper connection threshold (C(0) = no limit)."]},
    "lower_threshold": {"type": "int", "description": ["Lower connection threshold."]},
    "tunnel_type": {"type": "str", "choices": sorted(TUNNEL_TYPES), "description": ["Tunnel encapsulation (tunnel forwarding)."]},
    "tunnel_port": {"type": "int", "description": ["Destination port of GUE encapsulation."]},
    "tunnel_checksum": {"type": "str", "choices": sorted(TUNNEL_CHECKSUMS), "description": ["Tunnel checksum mode."]},
}


def service_options(extra: dict | None = None, real_server_extra: dict | None = None) -> dict:
    """Role argument-spec options of a service with its real servers (plus a role's own keys)."""
    servers = dict(REAL_SERVER_OPTIONS, **(real_server_extra or {}))
    out = {k: dict(v) for k, v in SERVICE_OPTIONS.items()}
    out.update(extra or {})
    out["real_servers"] = {
        "type": "list", "elements": "dict", "required": True,
        "description": ["The real servers of the service (at least one); a real server listed twice is refused."],
        "options": {k: dict(v) for k, v in servers.items()},
    }
    return out
