"""keepalived pre-flight checks and resolution: each rule's exact message (host, object, field)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._keepalived_preflight import (
    PreflightError,
    check,
    kernel_needs,
    normalize,
    resolve,
)

PASSWORD = "s3cr3t!x"  # never allowed to appear in a message (and '!' is refused: see below)

FRONT = {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddresses": ["192.0.2.10/24"]}
WEB = {"address": "192.0.2.10", "port": 80, "scheduler": "wrr",
       "real_servers": [{"address": "10.0.0.11", "weight": 3}, {"address": "10.0.0.12", "weight": 1}]}


def director(address, *instances, **extra):
    record = {"group": "directors", "group_hosts": ["dir1", "dir2"], "address": address,
              "vrrp_instances": [copy.deepcopy(i) for i in (instances or (FRONT,))]}
    record.update(copy.deepcopy(extra))
    return record


def pair(inst1=None, inst2=None, **extra):
    return {"dir1": director("192.0.2.1/24", inst1 or FRONT, **extra),
            "dir2": director("192.0.2.2/24", inst2 or FRONT, **extra)}


def with_(base, **changes):
    out = copy.deepcopy(base)
    out.update(changes)
    return out


# -- a good pair, and what resolution derives -------------------------------------------------


def test_good_pair_has_no_problems_and_derives_priority_state_and_peers():
    records = pair(virtual_servers=[WEB])
    assert check(records) == []
    one, two = resolve(records, "dir1"), resolve(records, "dir2")
    i1, i2 = one["instances"][0], two["instances"][0]
    assert (i1["priority"], i1["state"], i1["unicast_src_ip"], i1["unicast_peers"]) == (150, "MASTER", "192.0.2.1", ["192.0.2.2"])
    assert (i2["priority"], i2["state"], i2["unicast_src_ip"], i2["unicast_peers"]) == (140, "BACKUP", "192.0.2.2", ["192.0.2.1"])
    assert one["kernel_modules"] == ["ip_vs", "ip_vs_wrr"]
    assert one["ipvs_services"] == [{"protocol": "tcp", "address": "192.0.2.10", "port": 80, "fwmark": None, "family": "ipv4"}]
    vs = one["virtual_servers"][0]
    assert [(rs["head"], rs["weight"], rs["lvs_method"]) for rs in vs["real_servers"]] == [
        ("10.0.0.11 80", 3, "NAT"), ("10.0.0.12 80", 1, "NAT")]


def test_nopreempt_makes_every_director_start_as_backup():
    inst = with_(FRONT, nopreempt=True)
    records = pair(inst, inst)
    assert check(records) == []
    assert [resolve(records, h)["instances"][0]["state"] for h in ("dir1", "dir2")] == ["BACKUP", "BACKUP"]


def test_mixed_family_vips_go_to_the_excluded_block():
    inst = with_(FRONT, virtual_ipaddresses=["192.0.2.10/24", "2001:db8::10/64"])
    out = resolve(pair(inst, inst), "dir1")["instances"][0]
    assert [v["address"] for v in out["vips"]] == ["192.0.2.10"]
    assert [v["address"] for v in out["vips_excluded"]] == ["2001:db8::10"]


def test_password_goes_to_secrets_only():
    inst = with_(FRONT, auth_pass="abc12345")
    out = resolve(pair(inst, inst), "dir1")
    assert out["secrets"] == {"LVS_AUTH_0_VI_1": "abc12345"}
    assert "abc12345" not in repr(out["instances"])
    assert out["instances"][0]["auth_variable"] == "LVS_AUTH_0_VI_1"


def test_director_outside_the_play_is_used_for_peers_but_not_reported():
    records = pair()
    records["dir2"]["in_play"] = False
    records["dir2"]["vrrp_instances"][0]["interface"] = "bad name with spaces"
    assert check(records) == []
    assert resolve(records, "dir1")["instances"][0]["unicast_peers"] == ["192.0.2.2"]


# -- one test per rule, exact messages ------------------------------------------------------------


def test_vrid_unique_per_segment():
    other = {"name": "VI_2", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddresses": ["192.0.2.20/24"]}
    records = pair(with_(FRONT), with_(FRONT))
    records["dir3"] = director("192.0.2.3/24", other, group="other", group_hosts=["dir3"])
    assert check(records) == [
        "host dir3, instance VI_2, field virtual_router_id: 51 is also used by instance VI_1 (dir1, dir2) on "
        "segment 192.0.2.0/24 (ipv4): a VRID must be unique per broadcast segment"]


def test_vrid_unique_on_one_director():
    second = {"name": "VI_2", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddresses": ["192.0.2.20/24"]}
    records = {"dir1": director("192.0.2.1/24", FRONT, second, group_hosts=["dir1"])}
    assert check(records) == [
        "host dir1, instance VI_2, field virtual_router_id: 51 is also used by instance VI_1 on eth0 (ipv4)",
        "host dir1, instance VI_2, field virtual_router_id: 51 is also used by instance VI_1 (dir1) on segment "
        "192.0.2.0/24 (ipv4): a VRID must be unique per broadcast segment",
    ]


def test_same_vrid_on_other_segments_is_fine():
    other = {"name": "VI_2", "interface": "eth1", "virtual_router_id": 51, "virtual_ipaddresses": ["10.0.0.1/24"],
             "segment": "back"}
    records = {"dir1": director("192.0.2.1/24", FRONT, other, group_hosts=["dir1"])}
    assert check(records) == []


def test_exactly_one_highest_priority():
    assert check(pair(with_(FRONT, priority=100), with_(FRONT, priority=100))) == [
        "host dir2, instance VI_1, field priority: 100 ties with dir1 for the highest priority of instance VI_1: "
        "exactly one director must have the highest priority"]


def test_master_only_on_the_highest_priority():
    assert check(pair(FRONT, with_(FRONT, state="MASTER"))) == [
        "host dir2, instance VI_1, field state: MASTER, but priority 140 is below dir1's 150: only the "
        "highest-priority director may start as MASTER"]


def test_nopreempt_with_master_state():
    inst = with_(FRONT, state="MASTER", nopreempt=True)
    assert check(pair(inst, with_(FRONT, nopreempt=True))) == [
        "host dir1, instance VI_1, field nopreempt: needs state BACKUP (keepalived ignores nopreempt when the "
        "initial state is MASTER)"]


def test_unicast_peer_unknown():
    assert check(pair(with_(FRONT, unicast_peers=["192.0.2.9"]), FRONT)) == [
        "host dir1, instance VI_1, field unicast_peers[0]: 192.0.2.9 is not the unicast address of any director "
        "of instance VI_1 (dir1=192.0.2.1, dir2=192.0.2.2)",
        "host dir2, instance VI_1, field unicast_peers: dir1 (192.0.2.1) does not list this director's 192.0.2.2 "
        "among its unicast peers: peers must be symmetric",
    ]


def test_unicast_peers_symmetric():
    # dir2 lists dir1, dir1 lists nobody: dir2 is not listed back.
    assert check(pair(with_(FRONT, unicast_peers=[]), FRONT)) == [
        "host dir2, instance VI_1, field unicast_peers: dir1 (192.0.2.1) does not list this director's 192.0.2.2 "
        "among its unicast peers: peers must be symmetric",
    ]


def test_unicast_own_address_as_peer():
    assert check(pair(with_(FRONT, unicast_peers=["192.0.2.1", "192.0.2.2"]), FRONT)) == [
        "host dir1, instance VI_1, field unicast_peers[0]: 192.0.2.1 is this director's own address"]


def test_unicast_needs_an_address():
    records = pair()
    records["dir2"]["address"] = "dir2.example.net"  # a host name: unknown, not an error by itself
    assert check(records) == [
        "host dir2, instance VI_1, field unicast_src_ip: unknown: set keepalived_address (or unicast_src_ip) "
        "for this director, its peers need it"]


def test_unicast_source_family_must_match_the_vips():
    v6 = with_(FRONT, virtual_ipaddresses=["2001:db8::10/64"])
    assert check(pair(v6, v6)) == [
        "host dir1, instance VI_1, field virtual_ipaddresses: no ipv4 address, but the unicast source 192.0.2.1 is "
        "ipv4: VRRP adverts carry addresses of their own family; give the instance a unicast_src_ip and "
        "unicast_peers of the VIPs' family, or unicast: false",
        "host dir2, instance VI_1, field virtual_ipaddresses: no ipv4 address, but the unicast source 192.0.2.2 is "
        "ipv4: VRRP adverts carry addresses of their own family; give the instance a unicast_src_ip and "
        "unicast_peers of the VIPs' family, or unicast: false",
    ]
    assert check(pair(with_(v6, unicast=False), with_(v6, unicast=False))) == []
    mixed = with_(FRONT, virtual_ipaddresses=["2001:db8::10/64", "192.0.2.10/24"])
    out = resolve(pair(mixed, mixed), "dir1")["instances"][0]
    assert [v["address"] for v in out["vips"]] == ["192.0.2.10"]
    assert [v["address"] for v in out["vips_excluded"]] == ["2001:db8::10"]
    assert check(pair(with_(FRONT, unicast_peers=["2001:db8::2"]), FRONT))[0] == (
        "host dir1, instance VI_1, field unicast_peers[0]: 2001:db8::2 and the unicast source 192.0.2.1 are of "
        "different address families")


def test_sub_second_advert_int_needs_vrrp_version_3():
    assert check(pair(with_(FRONT, advert_int=0.5), with_(FRONT, advert_int=0.5)))[0] == (
        "host dir1, instance VI_1, field advert_int: 0.5 needs VRRP version 3 (set version: 3): version 2 advertises "
        "whole seconds and keepalived would round it")
    v3 = with_(FRONT, advert_int=0.5, version=3)
    assert check(pair(v3, v3)) == []


def test_unicast_and_multicast_mixed():
    assert check(pair(FRONT, with_(FRONT, unicast=False))) == [
        "host dir2, instance VI_1, field unicast: dir2 uses multicast but dir1 uses unicast: every director of "
        "instance VI_1 must use the same"]


def test_auth_pass_at_most_8_characters_and_never_shown():
    secret = "longer-than-8"
    problems = check(pair(with_(FRONT, auth_pass=secret), with_(FRONT, auth_pass=secret)))
    assert problems == [
        "host dir1, instance VI_1, field auth_pass: is 13 characters long; keepalived uses only the first 8, so "
        "directors whose passwords differ after that would still agree: use at most 8 characters",
        "host dir2, instance VI_1, field auth_pass: is 13 characters long; keepalived uses only the first 8, so "
        "directors whose passwords differ after that would still agree: use at most 8 characters",
    ]
    assert not any(secret in p for p in problems)


def test_auth_pass_must_match_and_is_not_shown():
    problems = check(pair(with_(FRONT, auth_pass="abcd1234"), with_(FRONT, auth_pass="zzzz9999")))
    assert problems == ["host dir2, instance VI_1, field auth_pass: differs from the password of dir1 (not shown): "
                        "every director of instance VI_1 needs the same"]
    assert "abcd1234" not in problems[0] and "zzzz9999" not in problems[0]


def test_auth_pass_characters():
    assert check(pair(with_(FRONT, auth_pass=PASSWORD), with_(FRONT, auth_pass=PASSWORD)))[0] == (
        "host dir1, instance VI_1, field auth_pass: must be printable ASCII without spaces, quotes, '$', '#' or '!'")


def test_vip_is_not_a_director_address():
    assert check(pair(with_(FRONT, virtual_ipaddresses=["192.0.2.2/24"]),
                      with_(FRONT, virtual_ipaddresses=["192.0.2.2/24"]))) == [
        "host dir1, instance VI_1, field virtual_ipaddresses[0]: 192.0.2.2 is also a real address of director "
        "dir2 (keepalived_address): keepalived must own the VIP, do not configure it statically",
        "host dir2, instance VI_1, field virtual_ipaddresses[0]: 192.0.2.2 is also a real address of director "
        "dir2 (keepalived_address): keepalived must own the VIP, do not configure it statically",
    ]


def test_vip_is_not_a_static_address():
    records = pair(static_addresses=["192.0.2.10"])
    assert check(records)[0] == (
        "host dir1, instance VI_1, field virtual_ipaddresses[0]: 192.0.2.10 is also a real address of director "
        "dir1 (keepalived_static_addresses): keepalived must own the VIP, do not configure it statically")


def test_instances_agree_across_directors():
    assert check(pair(FRONT, with_(FRONT, virtual_router_id=52, advert_int=2,
                                   virtual_ipaddresses=["192.0.2.11/24"]))) == [
        "host dir2, instance VI_1, field virtual_router_id: 52 differs from 51 on dir1: every director of instance "
        "VI_1 needs the same",
        "host dir2, instance VI_1, field advert_int: 2 differs from 1 on dir1: every director of instance VI_1 "
        "needs the same",
        "host dir2, instance VI_1, field virtual_ipaddresses: 192.0.2.11 differs from 192.0.2.10 on dir1: every "
        "director of instance VI_1 needs the same VIPs",
    ]


@pytest.mark.parametrize("change, message", [
    ({}, "host dir1, instance VI_1, field unicast_peers: not allowed with vrrp_strict (strict VRRP is multicast "
         "only): set unicast: false"),
    ({"unicast": False, "auth_pass": "abcd1234"}, "host dir1, instance VI_1, field auth_pass: authentication is not "
                                                  "allowed with vrrp_strict"),
    ({"unicast": False, "preempt_delay": 5}, "host dir1, instance VI_1, field preempt_delay: not allowed with vrrp_strict"),
    ({"unicast": False, "state": "MASTER"}, "host dir1, instance VI_1, field state: MASTER with vrrp_strict needs "
                                            "priority 255 (the address owner); use BACKUP"),
    ({"unicast": False, "virtual_ipaddresses": []}, "host dir1, instance VI_1, field virtual_ipaddresses: vrrp_strict "
                                                    "needs at least one VIP"),
    ({"unicast": False, "version": 2, "virtual_ipaddresses": ["192.0.2.10/24", "2001:db8::10/64"]},
     "host dir1, instance VI_1, field virtual_ipaddresses: IPv6 addresses need VRRP version 3 with vrrp_strict"),
    ({"unicast": False, "version": 2, "accept": True}, "host dir1, instance VI_1, field accept: not allowed for VRRP "
                                                       "version 2 with vrrp_strict"),
    ({"unicast": False, "garp_master_repeat": 5}, "host dir1, instance VI_1, field garp_master_repeat: gratuitous "
                                                  "ARP repeats are not allowed with vrrp_strict"),
], ids=["unicast", "auth", "preempt_delay", "master", "no-vip", "ipv6-v2", "accept-v2", "garp-repeat"])
def test_vrrp_strict_forbids(change, message):
    inst = with_(FRONT, nopreempt=False, **change)
    if "state" not in change:
        inst["state"] = "BACKUP"
    inst2 = with_(inst, state="BACKUP")
    records = {"dir1": director("192.0.2.1/24", inst, vrrp_strict=True),
               "dir2": director("192.0.2.2/24", inst2, vrrp_strict=True)}
    assert message in check(records)


def test_vrrp_strict_no_accept_with_a_virtual_server_on_the_vip():
    inst = with_(FRONT, unicast=False, state="BACKUP")
    records = {h: director(a, inst, vrrp_strict=True, virtual_servers=[WEB])
               for h, a in (("dir1", "192.0.2.1/24"), ("dir2", "192.0.2.2/24"))}
    assert check(records)[0] == (
        "host dir1, instance VI_1, field accept: vrrp_strict implies no_accept, so this director would drop the "
        "traffic of virtual_server tcp 192.0.2.10:80 on its VIP: set accept: true (VRRP version 3)")


def test_instance_strict_mode_is_named():
    inst = with_(FRONT, strict_mode=True, state="BACKUP")
    assert check(pair(inst, inst))[0] == ("host dir1, instance VI_1, field unicast_peers: not allowed with strict_mode "
                                          "(strict VRRP is multicast only): set unicast: false")


def test_one_owner_per_ipvs_service():
    records = pair(virtual_servers=[WEB], ipvs_table_services=[{"address": "192.0.2.10", "port": 80}])
    assert check(records)[0] == (
        "host dir1, virtual_server tcp 192.0.2.10:80: is also managed by lvs.ipvs.ipvs_table on this director "
        "(keepalived_ipvs_table_services): the IPVS entries of a service have one owner, keepalived or ipvs_table")


def test_kernel_modules_and_release():
    gue = with_(WEB, scheduler="mh", forwarding="tunnel", tunnel_type="gue", tunnel_port=6080, tunnel_checksum="csum",
                real_servers=[{"address": "10.0.0.11"}])
    kernel = {"release": "5.1.0-amd64", "missing": ["ip_vs_mh"]}
    assert check(pair(virtual_servers=[gue], kernel=kernel))[:3] == [
        "host dir1, virtual_server tcp 192.0.2.10:80, field scheduler: needs kernel module ip_vs_mh, which this "
        "director does not have (modprobe -n ip_vs_mh failed)",
        "host dir1, virtual_server tcp 192.0.2.10:80, field real_servers[0].tunnel_type: tunnel_type gue needs "
        "Linux 5.2 or later; this director runs 5.1.0-amd64",
        "host dir1, virtual_server tcp 192.0.2.10:80, field real_servers[0].tunnel_checksum: tunnel_checksum csum "
        "with gue needs Linux 5.3 or later; this director runs 5.1.0-amd64",
    ]


def test_kernel_needs_lists_modules_per_feature():
    sip = with_(WEB, protocol="udp", port=5060, persistence_timeout=60, persistence_engine="sip", scheduler="sh",
                real_servers=[{"address": "10.0.0.11"}])
    cfgs, _problems = normalize(pair(virtual_servers=[sip], lvs_sync_daemon={"interface": "eth1", "instance": "VI_1"}))
    assert [n.get("module") for n in kernel_needs(cfgs["dir1"])] == ["ip_vs", "ip_vs_sh", "ip_vs_pe_sip"]


# -- field validation names the field ---------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"virtual_router_id": 0}, "host dir1, instance VI_1, field virtual_router_id: 0 is out of range 1..255"),
    ({"virtual_router_id": None}, "host dir1, instance VI_1, field virtual_router_id: is required (1..255)"),
    ({"interface": None}, "host dir1, instance VI_1, field interface: is required"),
    ({"state": "LEADER"}, "host dir1, instance VI_1, field state: 'LEADER' is not one of MASTER, BACKUP"),
    ({"priority": 256}, "host dir1, instance VI_1, field priority: 256 is out of range 1..255"),
    ({"advert_int": "fast"}, "host dir1, instance VI_1, field advert_int: 'fast' is not a number"),
    ({"virtual_ipaddresses": ["192.0.2.300/24"]}, "host dir1, instance VI_1, field virtual_ipaddresses[0]: "
                                                  "'192.0.2.300/24' is not an address (with an optional /prefix)"),
    ({"track_scripts": ["chk_missing"]}, "host dir1, instance VI_1, field track_scripts[0]: chk_missing is not "
                                         "defined in keepalived_vrrp_scripts"),
    ({"track_interfaces": ["eth0"]}, "host dir1, instance VI_1, field track_interfaces[0]: eth0 is the instance's "
                                     "own interface, which keepalived always tracks (it would ignore this entry)"),
    ({"notify_master": "/bin/echo {x}"}, "host dir1, instance VI_1, field notify_master: must not contain newlines, "
                                         "braces, '#' or '!'"),
    ({"colour": "red"}, "host dir1, instance VI_1, field colour: unknown option"),
    ({"auth_type": "AH"}, "host dir1, instance VI_1, field auth_type: is set but auth_pass is not"),
])
def test_instance_fields(change, message):
    records = {"dir1": director("192.0.2.1/24", with_(FRONT, **change), group_hosts=["dir1"])}
    assert message in check(records)


@pytest.mark.parametrize("change, message", [
    ({"scheduler": "bogus"}, "host dir1, virtual_server tcp 192.0.2.10:80, field scheduler: 'bogus' is not one of "
                             "rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos"),
    ({"real_servers": [{"address": "10.0.0.11", "port": 8080, "forwarding": "dr"}]},
     "host dir1, virtual_server tcp 192.0.2.10:80, field real_servers[0].port: 8080 differs from the service port 80: "
     "only forwarding=nat can map ports"),
    ({"real_servers": [{"address": "10.0.0.11", "weight": 70000}]},
     "host dir1, virtual_server tcp 192.0.2.10:80, field real_servers[0].weight: 70000 is out of range 0..65535"),
    ({"real_servers": [{"address": "10.0.0.11", "checks": [{"type": "HTTP_GET"}]}]},
     "host dir1, virtual_server tcp 192.0.2.10:80, field real_servers[0].checks[0].urls: HTTP_GET needs at least "
     "one url (path, and status_code and/or digest)"),
    ({"checks": [{"type": "SMTP_CHECK"}]}, "host dir1, virtual_server tcp 192.0.2.10:80, field checks[0].type: "
                                           "'SMTP_CHECK' is not one of TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK"),
    ({"checks": [{"type": "MISC_CHECK"}]}, "host dir1, virtual_server tcp 192.0.2.10:80, field checks[0].misc_path: "
                                           "MISC_CHECK needs misc_path (the script to run)"),
    ({"checks": [{"type": "http", "urls": [{"path": "/", "digest": "xyz"}]}]},
     "host dir1, virtual_server tcp 192.0.2.10:80, field checks[0].urls[0].digest: must be an MD5 digest (32 hex "
     "digits, see genhash(1))"),
    ({"checks": [{"type": "tcp", "connect_port": 0}]}, "host dir1, virtual_server tcp 192.0.2.10:80, field "
                                                       "checks[0].connect_port: 0 is out of range 1..65535"),
    ({"quorum": 0}, "host dir1, virtual_server tcp 192.0.2.10:80, field quorum: 0 is out of range 1..2147483647"),
    ({"sorry_server": {"address": "10.0.0.99", "port": 8080, "forwarding": "dr"}},
     "host dir1, virtual_server tcp 192.0.2.10:80, field sorry_server.port: 8080 differs from the service port 80: "
     "only forwarding=nat can map ports"),
    ({"port": None}, "host dir1, virtual_server tcp 192.0.2.10:None, field port: a service with an address needs a "
                     "port (0 for all ports, persistent only)"),
])
def test_virtual_server_fields(change, message):
    vs = with_(WEB, **change)
    records = {"dir1": director("192.0.2.1/24", FRONT, group_hosts=["dir1"], virtual_servers=[vs])}
    assert message in check(records)


def test_sync_group_rules():
    back = {"name": "VI_2", "interface": "eth1", "virtual_router_id": 52, "virtual_ipaddresses": ["10.0.0.1/24"],
            "track_scripts": ["chk"]}
    records = {"dir1": director("192.0.2.1/24", FRONT, back, group_hosts=["dir1"],
                                vrrp_scripts=[{"name": "chk", "script": "/bin/true", "weight": -20}],
                                vrrp_sync_groups=[{"name": "G", "instances": ["VI_1", "VI_2"]},
                                                  {"name": "H", "instances": ["VI_3"]}])}
    assert check(records) == [
        "host dir1, instance VI_2, field track_scripts[0]: weight -20: keepalived ignores tracking weights of "
        "instances in a sync group (sync_group G); use weight 0 (fault on failure)",
        "host dir1, sync_group H, field instances[0]: VI_3 is not one of this director's keepalived_vrrp_instances",
    ]


def test_sync_daemon_follows_an_instance():
    records = pair(lvs_sync_daemon={"interface": "eth1"})
    assert check(records)[0] == ("host dir1, lvs_sync_daemon, field instance: set the VRRP instance whose state the "
                                 "sync daemon follows (master on the MASTER director, backup on the others)")
    records = pair(lvs_sync_daemon={"interface": "eth1", "instance": "VI_9"})
    assert check(records)[0] == ("host dir1, lvs_sync_daemon, field instance: VI_9 is not one of this director's "
                                 "keepalived_vrrp_instances")


def test_director_must_be_in_its_group():
    assert check({"dir1": director("192.0.2.1/24", group="lvs_directors", group_hosts=[])}) == [
        "host dir1, field keepalived_group: dir1 is not in the inventory group 'lvs_directors': set keepalived_group "
        "to the group of the directors that share the VRRP instances"]


def test_resolve_refuses_a_broken_director():
    with pytest.raises(PreflightError) as err:
        resolve({"dir1": director("192.0.2.1/24", with_(FRONT, virtual_router_id=300), group_hosts=["dir1"])}, "dir1")
    assert err.value.problems == ["host dir1, instance VI_1, field virtual_router_id: 300 is out of range 1..255"]
