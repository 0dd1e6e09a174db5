"""ipvs_real_server against the real kernel (UML lab): quartet per change, table read back with ipvsadm."""

from __future__ import annotations

import re

import pytest

from tests.support.modules import ipvsadm, quartet, run_module, saved

pytestmark = pytest.mark.lab

WEB = {"address": "10.0.0.1", "port": 80}
WEB6 = {"address": "2001:db8::1", "port": 80}
FWM6 = {"fwmark": 3, "family": "ipv6"}


def make_service(ns, svc, **extra):
    result = run_module("ipvs_service", dict(svc, namespace=ns, **extra))
    assert not result.get("failed"), result


@pytest.mark.parametrize("svc, args, line", [
    (WEB, {"address": "10.0.1.1", "port": 8080, "forwarding": "nat", "weight": 3},
     "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3"),
    (WEB, {"address": "10.0.1.2"}, "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1"),
    (WEB, {"address": "10.0.1.3", "forwarding": "tunnel", "weight": 65535},
     "-a -t 10.0.0.1:80 -r 10.0.1.3:80 -i -w 65535 --tun-type ipip"),
    (WEB, {"address": "10.0.1.4", "forwarding": "tunnel", "tunnel_type": "gue", "tunnel_port": 6080, "tunnel_checksum": "remcsum"},
     "-a -t 10.0.0.1:80 -r 10.0.1.4:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum"),
    (WEB, {"address": "10.0.1.5", "forwarding": "tunnel", "tunnel_type": "gue", "tunnel_port": 5555},
     "-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i -w 1 --tun-type gue --tun-port 5555 --tun-nocsum"),
    (WEB, {"address": "10.0.1.6", "forwarding": "tunnel", "tunnel_type": "gre", "tunnel_checksum": "csum", "weight": 0},
     "-a -t 10.0.0.1:80 -r 10.0.1.6:80 -i -w 0 --tun-type gre --tun-csum"),
    (WEB, {"address": "2001:db8::7", "forwarding": "tunnel"}, "-a -t 10.0.0.1:80 -r [2001:db8::7]:80 -i -w 1 --tun-type ipip"),
    (WEB6, {"address": "2001:db8::8", "forwarding": "nat", "port": 8000}, "-a -t [2001:db8::1]:80 -r [2001:db8::8]:8000 -m -w 1"),
    (FWM6, {"address": "2001:db8::9", "port": 443, "forwarding": "dr"}, "-a -f 3 -6 -r [2001:db8::9]:443 -g -w 1"),
    ({"fwmark": 4}, {"address": "10.0.1.10", "forwarding": "nat"}, "-a -f 4 -r 10.0.1.10:0 -m -w 1"),
], ids=["nat-port-map", "dr-default", "ipip-max-weight", "gue-remcsum", "gue-nocsum", "gre-csum-weight0",
        "ipv6-on-ipv4-tunnel", "ipv6-nat", "fwmark6-dr", "fwmark4-nat-port0"])
def test_create_real_server_quartet(netns, svc, args, line):
    ns = netns()
    make_service(ns, svc)
    service_line = saved(ns)
    checked, applied = quartet("ipvs_real_server", dict(args, service=svc), ns)
    assert saved(ns) == service_line + line + "\n"
    assert applied["commands"] == ["ipvsadm " + line]
    assert applied["before"] is None and applied["after"]["address"] == args["address"]


def test_thresholds_are_set_and_edited_in_place(netns):
    ns = netns()
    make_service(ns, WEB)
    rs = {"service": WEB, "address": "10.0.1.1", "forwarding": "nat", "upper_threshold": 100, "lower_threshold": 10}
    quartet("ipvs_real_server", rs, ns)
    assert re.search(r"-> 10.0.1.1:80 +100 +10 ", ipvsadm(ns, "-Ln", "--thresholds"))
    checked, applied = quartet("ipvs_real_server", dict(rs, upper_threshold=200, lower_threshold=0), ns)
    assert applied["commands"] == ["ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1 -x 200"]
    assert re.search(r"-> 10.0.1.1:80 +200 +0 ", ipvsadm(ns, "-Ln", "--thresholds"))


def test_weight_change_is_one_edit_and_forwarding_change_too(netns):
    ns = netns()
    make_service(ns, WEB)
    rs = {"service": WEB, "address": "10.0.1.1", "forwarding": "nat", "weight": 5}
    quartet("ipvs_real_server", rs, ns)
    checked, applied = quartet("ipvs_real_server", dict(rs, weight=0), ns)
    assert applied["commands"] == ["ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0"]
    assert (applied["before"]["weight"], applied["after"]["weight"]) == (5, 0)
    checked, applied = quartet("ipvs_real_server", dict(rs, forwarding="dr", weight=0), ns)
    assert applied["commands"] == ["ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 0"]
    assert saved(ns) == "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 0\n"


def test_absent_removes_only_that_real_server(netns):
    ns = netns()
    make_service(ns, WEB)
    for addr in ("10.0.1.1", "10.0.1.2"):
        quartet("ipvs_real_server", {"service": WEB, "address": addr}, ns)
    checked, applied = quartet("ipvs_real_server", {"service": WEB, "address": "10.0.1.1", "state": "absent"}, ns)
    assert applied["commands"] == ["ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.1:80"]
    assert saved(ns) == "-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -g -w 1\n"


def test_missing_service_fails_in_real_run_and_warns_in_check_mode(netns):
    ns = netns()
    args = {"service": WEB, "address": "10.0.1.1", "namespace": ns}
    result = run_module("ipvs_real_server", args)
    assert result.get("failed")
    assert result["msg"] == "service: tcp 10.0.0.1:80 does not exist; create it first with lvs.ipvs.ipvs_service"
    checked = run_module("ipvs_real_server", args, check=True)
    assert checked["changed"] is True and "does not exist yet" in str(checked["warnings"])
    assert checked["commands"] == ["ipvsadm -a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 1"]
    absent = run_module("ipvs_real_server", dict(args, state="absent"))
    assert absent["changed"] is False
    assert saved(ns) == ""


BAD_INPUT = [
    ({"address": "10.0.1.1", "weight": 65536}, "weight: 65536 is out of range 0..65535"),
    ({"address": "10.0.1.1", "lower_threshold": 5}, "lower_threshold: 5 is above upper_threshold 0"),
    ({"address": "10.0.1.1", "forwarding": "nat", "tunnel_type": "gre"}, "tunnel_type: only applies to forwarding=tunnel"),
    ({"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_type": "gue"}, "tunnel_port: tunnel_type=gue needs a tunnel_port"),
    ({"address": "10.0.1.1", "forwarding": "tunnel", "tunnel_type": "gre", "tunnel_checksum": "remcsum"},
     "tunnel_checksum: 'remcsum' does not apply to tunnel_type=gre"),
    ({"address": "10.0.1.1", "port": 8080}, "port: 8080 differs from the service port 80: only forwarding=nat can map ports"),
    ({"address": "2001:db8::5", "forwarding": "nat"}, "mixed families need forwarding=tunnel"),
    ({"address": "not-an-ip"}, "address: 'not-an-ip' is not an IPv4 or IPv6 address"),
]


def test_bad_input_fails_naming_the_field_and_changes_nothing(netns):
    ns = netns()
    make_service(ns, WEB)
    assert run_module("ipvs_real_server", {"service": WEB, "address": "10.0.1.9", "namespace": ns})["changed"]
    start = saved(ns)
    for args, message in BAD_INPUT:
        for check in (True, False):
            result = run_module("ipvs_real_server", dict(args, service=WEB, namespace=ns), check=check)
            assert result.get("failed"), (args, result)
            assert message in result["msg"], (args, result["msg"])
    # Every refusal happened before anything reached the kernel.
    assert saved(ns) == start
