"""ipvs_service against the real kernel (UML lab): quartet per change, table read back with ipvsadm -Sn."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.modules import quartet, run_module, saved

pytestmark = pytest.mark.lab

SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"]


@pytest.mark.parametrize("args, expected", [
    ({"address": "10.0.0.1", "port": 80, "scheduler": "rr"}, "-A -t 10.0.0.1:80 -s rr\n"),
    ({"protocol": "udp", "address": "10.0.0.1", "port": 5060, "scheduler": "rr", "persistence_timeout": 60,
      "persistence_engine": "sip", "one_packet": True}, "-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip -o\n"),
    ({"protocol": "sctp", "address": "10.0.0.1", "port": 9}, "-A --sctp-service 10.0.0.1:9 -s wlc\n"),
    ({"address": "2001:db8::1", "port": 443, "persistence_timeout": 600, "persistence_netmask": "64"},
     "-A -t [2001:db8::1]:443 -s wlc -p 600 -M 64\n"),
    ({"address": "10.0.0.1", "port": 0, "scheduler": "lc", "persistence_timeout": 300,
      "persistence_netmask": "255.255.255.0"}, "-A -t 10.0.0.1:0 -s lc -p 300 -M 255.255.255.0\n"),
    ({"fwmark": 5, "scheduler": "sh", "scheduler_flags": ["sh-port", "sh-fallback"]}, "-A -f 5 -s sh -b sh-fallback,sh-port\n"),
    ({"fwmark": 6, "family": "ipv6", "scheduler": "mh", "scheduler_flags": ["mh-fallback", "mh-port"]},
     "-A -f 6 -6 -s mh -b mh-fallback,mh-port\n"),
    ({"fwmark": 7, "scheduler": "wlc", "scheduler_flags": ["flag-1", "flag-2", "flag-3"], "one_packet": True},
     "-A -f 7 -s wlc -o -b flag-1,flag-2,flag-3\n"),
], ids=["tcp-rr", "udp-sip-ops", "sctp", "ipv6-persistent-64", "port0-persistent-mask", "fwmark-sh-flags",
        "fwmark6-mh-flags", "fwmark-generic-flags"])
def test_create_service_quartet(netns, args, expected):
    ns = netns()
    checked, applied = quartet("ipvs_service", args, ns)
    assert saved(ns) == expected
    assert applied["before"] is None
    assert applied["commands"] == ["ipvsadm " + expected.strip()]
    assert applied["diff"]["before"] == "" and applied["diff"]["after"] == expected


def test_every_scheduler_is_loaded_and_set_in_place(netns):
    ns = netns()
    base = {"address": "10.0.0.1", "port": 80, "namespace": ns}
    assert not run_module("ipvs_service", dict(base, scheduler="rr")).get("failed")
    assert not run_module("ipvs_real_server", {"service": {"address": "10.0.0.1", "port": 80}, "address": "10.0.1.1",
                                               "forwarding": "nat", "namespace": ns}).get("failed")
    for sched in SCHEDULERS:
        result = run_module("ipvs_service", dict(base, scheduler=sched))
        assert not result.get("failed"), result
        assert result["changed"] is (sched != "rr")
        # An edit in place keeps the real server; delete + add would have dropped it.
        assert saved(ns) == "-A -t 10.0.0.1:80 -s %s\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1\n" % sched
        if sched != "rr":
            assert result["commands"] == ["ipvsadm -E -t 10.0.0.1:80 -s %s" % sched]


def test_unavailable_scheduler_fails_clearly_and_changes_nothing(netns):
    ns = netns()
    has_twos = subprocess.run(["modprobe", "-n", "ip_vs_twos"], capture_output=True, check=False).returncode == 0
    result = run_module("ipvs_service", {"address": "10.0.0.1", "port": 80, "scheduler": "twos", "namespace": ns})
    if has_twos:
        assert not result.get("failed") and saved(ns) == "-A -t 10.0.0.1:80 -s twos\n"
    else:
        assert result.get("failed")
        assert "tcp 10.0.0.1:80: add_service refused by the kernel" in result["msg"]
        assert "ip_vs_twos not available" in result["msg"]
        assert saved(ns) == ""


def test_edit_persistence_in_place_and_back(netns):
    ns = netns()
    base = {"address": "10.0.0.1", "port": 443, "scheduler": "wlc"}
    quartet("ipvs_service", base, ns)
    checked, applied = quartet("ipvs_service", dict(base, persistence_timeout=900, persistence_netmask="255.255.0.0"), ns)
    assert applied["commands"] == ["ipvsadm -E -t 10.0.0.1:443 -s wlc -p 900 -M 255.255.0.0"]
    assert applied["before"]["persistence_timeout"] == 0
    assert saved(ns) == "-A -t 10.0.0.1:443 -s wlc -p 900 -M 255.255.0.0\n"
    # Back to non-persistent: the flags mask must clear the persistence flag.
    quartet("ipvs_service", base, ns)
    assert saved(ns) == "-A -t 10.0.0.1:443 -s wlc\n"


def test_absent_removes_service_with_its_real_servers(netns):
    ns = netns()
    svc = {"fwmark": 9, "family": "ipv6", "scheduler": "rr"}
    quartet("ipvs_service", svc, ns)
    assert not run_module("ipvs_real_server", {"service": {"fwmark": 9, "family": "ipv6"}, "address": "2001:db8::9",
                                               "port": 80, "namespace": ns}).get("failed")
    checked, applied = quartet("ipvs_service", dict(svc, state="absent"), ns)
    assert applied["commands"] == ["ipvsadm -D -f 9 -6"]
    assert applied["after"] is None and len(applied["before"]["real_servers"]) == 1
    assert saved(ns) == ""


def test_other_services_are_untouched(netns):
    ns = netns()
    quartet("ipvs_service", {"address": "10.0.0.1", "port": 80}, ns)
    quartet("ipvs_service", {"address": "10.0.0.2", "port": 80, "scheduler": "rr"}, ns)
    quartet("ipvs_service", {"address": "10.0.0.1", "port": 80, "state": "absent"}, ns)
    assert saved(ns) == "-A -t 10.0.0.2:80 -s rr\n"


BAD_INPUT = [
    ({"address": "10.0.0.1", "port": 80, "scheduler": "rr", "scheduler_flags": ["sh-port"]},
     "scheduler_flags: flag 'sh-port' does not apply to scheduler 'rr'"),
    ({"address": "10.0.0.1", "port": 80, "persistence_netmask": "255.255.255.0"},
     "persistence_netmask: only applies to a persistent service"),
    ({"address": "10.0.0.256", "port": 80}, "address: '10.0.0.256' is not an IPv4 or IPv6 address"),
    ({"address": "10.0.0.1", "port": 65536}, "port: 65536 is out of range 0..65535"),
    ({"address": "10.0.0.1", "port": 80, "one_packet": True}, "one_packet: one-packet scheduling is only for UDP"),
    ({"fwmark": 1, "address": "10.0.0.1"}, "parameters are mutually exclusive: fwmark|address"),
    ({"address": "10.0.0.1", "port": 80, "scheduler": "fastest"}, "value of scheduler must be one of"),
    ({"address": "10.0.0.1", "port": 0}, "port: port 0 (all ports) needs a persistent service"),
]


def test_bad_input_fails_naming_the_field_and_changes_nothing(netns):
    ns = netns()
    assert run_module("ipvs_service", {"address": "10.0.0.9", "port": 80, "namespace": ns})["changed"]
    start = saved(ns)
    for args, message in BAD_INPUT:
        for check in (True, False):
            result = run_module("ipvs_service", dict(args, namespace=ns), check=check)
            assert result.get("failed"), (args, result)
            assert message in result["msg"], (args, result["msg"])
    # Every refusal happened before anything reached the kernel.
    assert saved(ns) == start


def test_unknown_namespace_fails_clearly():
    result = run_module("ipvs_service", {"address": "10.0.0.1", "port": 80, "namespace": "no-such-ns"})
    assert result.get("failed")
    assert result["msg"].startswith("namespace: network namespace 'no-such-ns' not found")
