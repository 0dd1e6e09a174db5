# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the topology roles (director, real_server) and of playbooks/site.yml.

They validate role input on the controller, with the same model as the IPVS modules
(module_utils/_ipvs_model.py), so that bad input stops a play with a message naming the
field before any host changes, and derive what each part of a role needs from it.
"""

from __future__ import annotations

import ipaddress
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import (
    IPVSValidationError,
    normalize_service,
    normalize_table,
    service_config,
)


def lvs_vips(vips: t.Any, services: t.Any = None, name: str = "vips") -> list[str]:
    """Validate VIPs and return them as host routes (``ADDR/32`` or ``ADDR/128``), sorted.

    An empty ``vips`` means the addresses of ``services`` (canonical, see ipvs_normalize).
    """
    if vips in (None, "", []):
        vips = sorted({s["address"] for s in services or [] if s.get("address")})
    if not isinstance(vips, (list, tuple)):
        raise AnsibleFilterError("%s: must be a list of addresses" % name)
    out = []
    for i, raw in enumerate(vips):
        text = str(raw).strip()
        try:
            iface = ipaddress.ip_interface(text)
        except ValueError:
            raise AnsibleFilterError("%s[%d]: %r is not an IPv4 or IPv6 address" % (name, i, raw)) from None
        addr = iface.ip
        if addr.is_multicast or addr.is_unspecified or addr.is_loopback or addr.is_link_local:
            raise AnsibleFilterError("%s[%d]: %s cannot be a virtual address" % (name, i, addr))
        full = addr.max_prefixlen
        if "/" in text and iface.network.prefixlen != full:
            raise AnsibleFilterError("%s[%d]: %s: a VIP is a single address (/%d), not /%d"
                                     % (name, i, text, full, iface.network.prefixlen))
        item = "%s/%d" % (addr, full)
        if item in out:
            raise AnsibleFilterError("%s[%d]: %s is listed twice" % (name, i, addr))
        out.append(item)
    return sorted(out, key=lambda a: (":" in a, ipaddress.ip_interface(a)))


def lvs_networks(networks: t.Any, name: str = "networks") -> list[str]:
    """Validate networks (``ADDRESS/PREFIX``, host bits allowed) and return them canonical."""
    if networks in (None, ""):
        return []
    if not isinstance(networks, (list, tuple)):
        raise AnsibleFilterError("%s: must be a list of networks" % name)
    out = []
    for i, raw in enumerate(networks):
        try:
            net = ipaddress.ip_network(str(raw).strip(), strict=False)
        except ValueError:
            raise AnsibleFilterError("%s[%d]: %r is not an IPv4 or IPv6 network (ADDRESS/PREFIX)" % (name, i, raw)) from None
        if str(net) in out:
            raise AnsibleFilterError("%s[%d]: %s is listed twice" % (name, i, net))
        out.append(str(net))
    return out


def lvs_site(hostvars: t.Any, real_server_hosts: t.Any, services: t.Any) -> dict[str, t.Any]:
    """Role input derived from an inventory (playbooks/site.yml).

    Every host of ``real_server_hosts`` has the fact ``lvs_site_real_server`` (address, port,
    weight, gateway). Returns ``services`` (each of ``services`` with these real servers unless
    it lists its own ``real_servers``), ``vips`` (the services' addresses) and ``gateways``
    (real server address to its default gateway).
    """
    if not isinstance(services, (list, tuple)):
        raise AnsibleFilterError("lvs_virtual_services: must be a list of services")
    servers, gateways = [], {}
    for host in real_server_hosts or []:
        record = hostvars[host].get("lvs_site_real_server") if host in hostvars else None
        if not isinstance(record, t.Mapping):
            raise AnsibleFilterError("%s: no lvs_site_real_server fact (run the validation play of site.yml on it)" % host)
        item = {"address": record.get("address"), "weight": record.get("weight")}
        if record.get("port") not in (None, ""):
            item["port"] = record.get("port")
        servers.append(item)
        if record.get("address"):
            gateways[str(record["address"])] = str(record.get("gateway") or "")
    out = []
    for svc in services:
        if not isinstance(svc, t.Mapping):
            raise AnsibleFilterError("lvs_virtual_services: every item must be a dictionary")
        svc = dict(svc)
        svc.setdefault("real_servers", [dict(rs) for rs in servers])
        out.append(svc)
    vips = []
    for svc in out:
        if svc.get("address") and str(svc["address"]) not in vips:
            vips.append(str(svc["address"]))
    return {"services": out, "vips": vips, "gateways": gateways}


_ROLE_FORWARDING = {"nat": "nat", "dr": "dr", "tun": "tunnel", "tunnel": "tunnel"}


def lvs_director(services: t.Any, forwarding: t.Any = "dr", name: str = "director_services") -> dict[str, t.Any]:
    """Validate the director role's services and split what each part of the role needs.

    Each service may carry ``forwarding`` (nat, dr, tun: the default of its real servers, else
    ``forwarding``) and ``fullnat`` (NAT services only: the director also rewrites the source).
    Returns ``table`` (canonical services for lvs.ipvs.ipvs_table), ``vips`` (their addresses
    as host routes), ``fwmarks``, ``fullnat`` (the FULLNAT services' protocol/address/port),
    ``nat_real_servers`` (addresses of NAT real servers that are not FULLNAT, whose replies must
    come back through the director), ``schedulers`` and ``methods`` (the forwarding methods used).
    """
    default = _ROLE_FORWARDING.get(str(forwarding))
    if default is None:
        raise AnsibleFilterError("director_forwarding: %r is not one of nat, dr, tun" % (forwarding,))
    if services is None:
        services = []
    if not isinstance(services, (list, tuple)):
        raise AnsibleFilterError("%s: must be a list of services" % name)
    raw, fullnat_idx = [], set()
    for i, svc in enumerate(services):
        if not isinstance(svc, t.Mapping):
            raise AnsibleFilterError("%s[%d]: must be a dictionary" % (name, i))
        svc = {k: v for k, v in svc.items() if v is not None}
        method = svc.pop("forwarding", None)
        svc_default = default
        if method is not None:
            svc_default = _ROLE_FORWARDING.get(str(method))
            if svc_default is None:
                raise AnsibleFilterError("%s[%d].forwarding: %r is not one of nat, dr, tun" % (name, i, method))
        fullnat = svc.pop("fullnat", False)
        if not isinstance(fullnat, bool):
            raise AnsibleFilterError("%s[%d].fullnat: %r is not a boolean" % (name, i, fullnat))
        servers = svc.get("real_servers")
        if servers is None or (isinstance(servers, (list, tuple)) and not servers):
            raise AnsibleFilterError("%s[%d].real_servers: a service needs at least one real server" % (name, i))
        if isinstance(servers, (list, tuple)):
            fixed = []
            for j, rs in enumerate(servers):
                if not isinstance(rs, t.Mapping):
                    raise AnsibleFilterError("%s[%d].real_servers[%d]: must be a dictionary" % (name, i, j))
                rs = {k: v for k, v in rs.items() if v is not None}
                rs_method = _ROLE_FORWARDING.get(str(rs.get("forwarding") or svc_default))
                if rs_method is None:
                    raise AnsibleFilterError("%s[%d].real_servers[%d].forwarding: %r is not one of nat, dr, tun"
                                             % (name, i, j, rs.get("forwarding")))
                if fullnat and rs_method != "nat":
                    raise AnsibleFilterError("%s[%d].real_servers[%d].forwarding: %s, but fullnat needs nat real servers"
                                             % (name, i, j, {"tunnel": "tun"}.get(rs_method, rs_method)))
                fixed.append(dict(rs, forwarding=rs_method))
            svc["real_servers"] = fixed
        if fullnat:
            fullnat_idx.add(i)
        raw.append(svc)
    try:
        table = normalize_table(raw, name)
        # Already valid: one by one again only to know which canonical service was FULLNAT.
        canonical = [normalize_service(svc, "%s[%d]" % (name, i)) for i, svc in enumerate(raw)]
    except IPVSValidationError as exc:
        raise AnsibleFilterError(str(exc)) from None
    fullnat, nat_rs = [], []
    for i, svc in enumerate(canonical):
        if i in fullnat_idx:
            if svc["fwmark"] is not None:
                raise AnsibleFilterError("%s[%d].fullnat: a fwmark service cannot be FULLNAT (give address and port)" % (name, i))
            fullnat.append({k: svc[k] for k in ("protocol", "family", "address", "port")})
        else:
            nat_rs.extend(rs["address"] for rs in svc["real_servers"] if rs["forwarding"] == "nat")
    vips = sorted({"%s/%d" % (s["address"], 128 if ":" in s["address"] else 32) for s in table if s["address"]},
                  key=lambda a: (":" in a, ipaddress.ip_interface(a)))
    return {
        "table": table,
        "vips": vips,
        "fwmarks": sorted({s["fwmark"] for s in table if s["fwmark"] is not None}),
        "fullnat": fullnat,
        "nat_real_servers": sorted(set(nat_rs)),
        "schedulers": sorted({s["scheduler"] for s in table}),
        "methods": sorted({rs["forwarding"] for s in table for rs in s["real_servers"]}),
        "families": sorted({s["family"] for s in table}),
    }


_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132}


def lvs_nat_rules(director: t.Any, masquerade: t.Any, chain: str, interface: str) -> dict[str, list[str]]:
    """The director's source-NAT chain per family, as ``iptables -S`` prints it (so it compares as text).

    ``director`` is lvs_director's result, ``masquerade`` canonical networks (lvs_networks): their
    outbound traffic through ``interface`` is masqueraded. Each FULLNAT service's IPVS traffic to
    its real servers (the xt_ipvs match, original direction, masquerading method) gets the source
    address of the interface it leaves by.
    """
    out: dict[str, list[str]] = {"ipv4": [], "ipv6": []}
    for net in masquerade or []:
        out["ipv6" if ":" in str(net) else "ipv4"].append("-A %s -s %s -o %s -j MASQUERADE" % (chain, net, interface))
    for svc in (director or {}).get("fullnat") or []:
        out[svc["family"]].append("-A %s -m ipvs --vproto %d --vaddr %s --vport %d --vdir ORIGINAL --vmethod MASQ -j MASQUERADE"
                                  % (chain, _PROTO_NUMBERS[svc["protocol"]], svc["address"], svc["port"]))
    return out


def lvs_duplicates(items: t.Any) -> list[t.Any]:
    """The items that occur more than once, each once, in first-seen order."""
    seen, twice = [], []
    for item in items or []:
        if item in seen and item not in twice:
            twice.append(item)
        seen.append(item)
    return twice


def lvs_keepalived_services(table: t.Any, check: t.Any = None, delay_loop: t.Any = 3) -> list[dict[str, t.Any]]:
    """Canonical services (lvs_director's ``table``) as lvs.ipvs.keepalived virtual servers.

    Every real server gets the health check ``check`` (a keepalived role check: ``type``
    TCP_CHECK, HTTP_GET, ...) unless its service gives ``checks``; keepalived then owns the
    services in the IPVS table and takes a failing real server out of it.
    """
    out = []
    for svc in table or []:
        item = {k: v for k, v in service_config(svc).items() if v not in (None, [], "")}
        if not svc.get("persistence_timeout"):
            item.pop("persistence_netmask", None)
            item.pop("persistence_timeout", None)
        item["delay_loop"] = delay_loop
        if check:
            item["checks"] = [dict(check)]
        servers = []
        for rs in svc.get("real_servers") or []:
            server = {"address": rs["address"], "port": rs["port"], "weight": rs["weight"], "forwarding": rs["forwarding"]}
            server.update({k: rs[k] for k in ("upper_threshold", "lower_threshold") if rs.get(k)})
            server.update({k: rs[k] for k in ("tunnel_type", "tunnel_port", "tunnel_checksum") if rs.get(k) is not None})
            servers.append(server)
        item["real_servers"] = servers
        out.append(item)
    return out


def lvs_addr_text(addr_info: t.Any) -> str:
    """``ADDRESS/PREFIX`` of one ``addr_info`` item of ``ip -j address show``."""
    try:
        return "%s/%s" % (addr_info["local"], addr_info["prefixlen"])
    except (KeyError, TypeError):
        raise AnsibleFilterError("lvs_addr_text: %r is not an addr_info item of ip -j address show" % (addr_info,)) from None


class FilterModule:
    """Topology role filters."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "lvs_director": lvs_director,
            "lvs_duplicates": lvs_duplicates,
            "lvs_keepalived_services": lvs_keepalived_services,
            "lvs_nat_rules": lvs_nat_rules,
            "lvs_vips": lvs_vips,
            "lvs_addr_text": lvs_addr_text,
            "lvs_networks": lvs_networks,
            "lvs_site": lvs_site,
        }
