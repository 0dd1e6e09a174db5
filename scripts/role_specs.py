"""Generate the topology roles' meta/argument_specs.yml from one schema.

    .venv/bin/python scripts/role_specs.py          # write roles/{director,real_server}/meta/argument_specs.yml
    .venv/bin/python scripts/role_specs.py --check  # exit 1 if a committed file differs

A service's fields come from plugins/module_utils/_ipvs_schema.py (the same constants the IPVS
model validates with); only the roles' own options are written here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.collection import ensure_importable  # noqa: E402

ensure_importable()

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_schema import service_options  # noqa: E402

AUTHOR = ["lvs.ipvs maintainers (@lvs-ipvs)"]

DIRECTOR_SERVICE_EXTRA = {
    "forwarding": {"type": "str", "choices": ["nat", "dr", "tun", "tunnel"],
                   "description": ["Forwarding of this service's real servers (C(tunnel) = C(tun)); O(director_forwarding) when omitted."]},
    "fullnat": {"type": "bool", "default": False,
                "description": ["NAT services only: the director also rewrites the source to its own address (see docs/fullnat.md),"
                                " so the real servers need neither the director as gateway nor the same subnet."]},
}
DIRECTOR_REAL_SERVER_EXTRA = {
    "forwarding": {"type": "str", "choices": ["nat", "dr", "tun", "tunnel"],
                   "description": ["Forwarding of this real server (C(tunnel) = C(tun)); the service's when omitted."]},
}


def _opt(type_: str, description: str | list[str], **more) -> dict:
    out = {"type": type_}
    out.update(more)
    out["description"] = [description] if isinstance(description, str) else description
    return out


DIRECTOR = {
    "short_description": "LVS director: NAT, DR, TUN and FULLNAT services converged by one ipvs_table task, VIPs, source NAT, restored at boot",
    "description": [
        "Turns the host into an LVS director: kernel modules and parameters (lvs.ipvs.lvs_sysctl, ip_vs loaded before any"
        " net.ipv4.vs.* parameter, now and at boot), source NAT in a chain of the role's own, the VIPs (lvs.ipvs.lvs_vip),"
        " the IPVS table with ONE lvs.ipvs.ipvs_table task (owned, make-before-break, drain, the rules file of the role's"
        " services only) and a oneshot unit that restores all of it at boot.",
        "C(director_state=absent) removes everything the role put on the host.",
        "Ownership: the role owns the IPVS services of its VIPs and fwmarks (this run's and, from a record under"
        " O(director_state_dir), the last run's), the VIPs with its label, and its NAT chain; never services, VIPs or"
        " rules of others (keepalived).",
    ],
    "options": {
        "director_state": _opt("str", "C(present) builds the director; C(absent) removes what the role put on the host (services after a drain).",
                               default="present", choices=["present", "absent"]),
        "director_forwarding": _opt("str", "Default forwarding of the real servers (a service or real server may set its own).",
                                    default="dr", choices=["nat", "dr", "tun"]),
        "director_services": _opt("list", "The virtual services, each with its real servers, validated like the IPVS modules before any change.",
                                  elements="dict", default=[], options=service_options(DIRECTOR_SERVICE_EXTRA, DIRECTOR_REAL_SERVER_EXTRA)),
        "director_interface": _opt("str", "The interface that gets the VIPs (and out of which the masqueraded sources leave).", default="eth0"),
        "director_private_interface": _opt("str", "NAT: the interface facing the real servers (ICMP redirects are turned off on it).", default=""),
        "director_vips": _opt("list", "The VIPs; empty: the services' addresses.", elements="str", default=[]),
        "director_vips_owner": _opt("str", ["C(static): the role holds the VIPs, now and at boot.",
                                            "C(keepalived): keepalived (VRRP) holds them; the role holds none and removes those it held."],
                                    default="static", choices=["static", "keepalived"]),
        "director_ipvs_owner": _opt("str", ["C(role): the role's ipvs_table task owns the services.",
                                            "C(keepalived): keepalived (health checks) owns them; the role owns none and removes those it owned."],
                                    default="role", choices=["role", "keepalived"]),
        "director_vip_label": _opt("str", "Label of the IPVS VIPs (IPv4); empty: the interface name with C(:lvs).", default=""),
        "director_masquerade_sources": _opt("list", "Networks whose outbound traffic through O(director_interface) is masqueraded"
                                            " (NAT real servers' own connections).",
                                            elements="str", default=[]),
        "director_drain_timeout": _opt("int", "Seconds a removed real server is drained (weight 0) before it is deleted; 0 deletes at once.", default=30),
        "director_persist": _opt("bool", "Keep the rules file of the role's services and restore it at boot.", default=True),
        "director_persist_path": _opt("str", "The rules file; empty: /etc/lvs.ipvs/UNIT.ipvs.rules.", default=""),
        "director_timeouts": _opt("dict", "IPVS timeouts (C(tcp), C(tcpfin), C(udp) seconds), set now and at boot.", default={}),
        "director_sysctls": _opt("dict", "More kernel parameters (merged over the role's own, see vars/main.yml).", default={}),
        "director_sysctl_file": _opt("path", "The sysctl.d drop-in the role owns.", default="/etc/sysctl.d/90-lvs-director.conf"),
        "director_modules_file": _opt("path", "The modules-load.d file the role owns (ip_vs and the schedulers, loaded at boot before systemd-sysctl).",
                                      default="/etc/modules-load.d/lvs-director.conf"),
        "director_unit_name": _opt("str", "Name of the oneshot systemd unit that restores the director at boot.", default="lvs-director"),
        "director_state_dir": _opt("path", "Where the role records what it owns.", default="/var/lib/lvs.ipvs"),
        "director_nat_chain": _opt("str", "The iptables nat chain the role owns (POSTROUTING jumps to it).", default="LVS-DIRECTOR"),
        "director_manage_packages": _opt("bool", "Install O(director_packages).", default=True),
        "director_packages": _opt("list", "Packages the role needs.", elements="str", default=["ipvsadm", "python3-pyroute2", "iptables"]),
        "director_real_server_gateways": _opt("dict", "Real server address to its default gateway (site.yml fills it); every NAT (not FULLNAT)"
                                              " real server's must be an address of this director or in O(director_allowed_gateways).", default={}),
        "director_allowed_gateways": _opt("list", "Gateways the NAT real servers may use besides this director's addresses (a floating gateway VIP).",
                                          elements="str", default=[]),
    },
}

REAL_SERVER = {
    "short_description": "LVS DR or TUN real server: VIPs on lo or tunl0, no ARP for them, restored at boot",
    "description": [
        "Kernel parameters first (arp_ignore, arp_announce, rp_filter; ipip loaded for TUN), then the VIPs"
        " (lvs.ipvs.lvs_vip) on lo (DR) or tunl0 (TUN), now and at boot (a oneshot unit of the role).",
        "C(real_server_state=absent) removes the role's VIPs, unit and files.",
    ],
    "options": {
        "real_server_state": _opt("str", "C(present) or C(absent).", default="present", choices=["present", "absent"]),
        "real_server_forwarding": _opt("str", "C(dr): VIPs on lo; C(tun): VIPs on tunl0 (IPv4 only).", default="dr", choices=["dr", "tun"]),
        "real_server_vips": _opt("list", "The virtual addresses this real server answers for (/32 or /128).", elements="str", default=[]),
        "real_server_interface": _opt("str", "The interface facing the director; the ARP parameters are set on it and on C(all).", default="eth0"),
        "real_server_arp_ignore": _opt("int", "net.ipv4.conf.{all,INTERFACE}.arp_ignore.", default=1),
        "real_server_arp_announce": _opt("int", "net.ipv4.conf.{all,INTERFACE}.arp_announce.", default=2),
        "real_server_rp_filter": _opt("int", "net.ipv4.conf.{all,INTERFACE}.rp_filter (2, loose).", default=2),
        "real_server_sysctls": _opt("dict", "More kernel parameters (merged over the role's own).", default={}),
        "real_server_sysctl_file": _opt("path", "The sysctl.d drop-in the role owns.", default="/etc/sysctl.d/90-lvs-real-server.conf"),
        "real_server_modules_file": _opt("path", "The modules-load.d file the role owns (TUN: ipip).", default="/etc/modules-load.d/lvs-real-server.conf"),
        "real_server_unit_name": _opt("str", "Name of the oneshot unit that restores the VIPs at boot.", default="lvs-real-server"),
    },
}

ROLES = {"director": DIRECTOR, "real_server": REAL_SERVER}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # noqa: D102 - plain YAML, no anchors
        return True

    def increase_indent(self, flow=False, indentless=False):  # noqa: D102 - lists indented (yamllint)
        return super().increase_indent(flow, False)


def render(name: str, spec: dict) -> str:
    main = {"short_description": spec["short_description"], "description": spec["description"], "author": AUTHOR,
            "options": spec["options"]}
    validate = {"short_description": "Validate the %s input without changing anything" % name,
                "description": ["Runs only the checks of the role (on the controller). site.yml runs this entry point on every host"
                                " before any host changes."],
                "author": AUTHOR, "options": spec["options"]}
    body = yaml.dump({"argument_specs": {"main": main, "validate": validate}}, Dumper=_Dumper, sort_keys=False, width=110,
                     default_flow_style=False)
    return "---\n# Generated by scripts/role_specs.py from plugins/module_utils/_ipvs_schema.py: edit those, not this file.\n" + body


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, spec in ROLES.items():
        path = ROOT / "roles" / name / "meta" / "argument_specs.yml"
        text = render(name, spec)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print("role_specs: out of date (run scripts/role_specs.py): %s" % ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
