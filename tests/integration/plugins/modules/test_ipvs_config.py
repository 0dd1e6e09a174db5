"""ipvs_config against the real kernel (UML lab): timeouts and sync daemons, read back with ipvsadm."""

from __future__ import annotations

import pytest

from tests.support.modules import ipvsadm, run_module

pytestmark = pytest.mark.lab


def test_timeouts_quartet_and_ipvsadm_agrees(netns):
    ns = netns()
    args = {"timeouts": {"tcpfin": 30, "udp": 60}, "namespace": ns}
    checked = run_module("ipvs_config", args, check=True)
    assert checked["changed"] and checked["commands"] == ["ipvsadm --set 900 30 60"]
    assert "Timeout (tcp tcpfin udp): 900 120 300" in ipvsadm(ns, "-L", "--timeout")
    applied = run_module("ipvs_config", args)
    assert applied["changed"] and applied["after"] == checked["after"]
    assert applied["after"]["timeouts"] == {"tcp": 900, "tcpfin": 30, "udp": 60}
    assert "Timeout (tcp tcpfin udp): 900 30 60" in ipvsadm(ns, "-L", "--timeout")
    assert run_module("ipvs_config", args, check=True)["changed"] is False
    assert run_module("ipvs_config", args)["changed"] is False
    assert run_module("ipvs_info", {"namespace": ns})["timeouts"] == {"tcp": 900, "tcpfin": 30, "udp": 60}


def test_sync_daemons_start_edit_stop(topology):
    topo = topology
    topo.bridge("sync")
    host = topo.host("director", links=[("sync", "10.20.0.1/24")])
    ns = host.ns
    master = {"state": "master", "interface": "eth0", "syncid": 10, "mcast_ttl": 2, "mcast_port": 8850}
    args = {"sync_daemons": [master, {"state": "backup", "interface": "eth0", "syncid": 10}], "namespace": ns}
    checked = run_module("ipvs_config", args, check=True)
    assert checked["commands"] == ["ipvsadm --start-daemon master --mcast-interface eth0 --syncid 10 --mcast-port 8850 --mcast-ttl 2",
                                   "ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 10"]
    assert "master" not in ipvsadm(ns, "-L", "--daemon")
    applied = run_module("ipvs_config", args)
    assert applied["changed"], applied
    daemons = ipvsadm(ns, "-L", "--daemon")
    assert "master sync daemon (mcast=eth0, syncid=10" in daemons and "backup sync daemon (mcast=eth0, syncid=10" in daemons
    (got_master,) = [d for d in applied["after"]["sync_daemons"] if d["state"] == "master"]
    assert (got_master["mcast_group"], got_master["mcast_port"], got_master["mcast_ttl"]) == ("224.0.0.81", 8850, 2)
    assert "port=8850, ttl=2" in daemons
    assert run_module("ipvs_config", args)["changed"] is False
    # A new syncid cannot be edited in place: the daemon is restarted.
    edited = run_module("ipvs_config", dict(args, sync_daemons=[dict(master, syncid=11)]))
    assert edited["commands"] == ["ipvsadm --stop-daemon master",
                                  "ipvsadm --start-daemon master --mcast-interface eth0 --syncid 11 --mcast-port 8850 --mcast-ttl 2",
                                  "ipvsadm --stop-daemon backup"]
    assert "syncid=11" in ipvsadm(ns, "-L", "--daemon") and "backup" not in ipvsadm(ns, "-L", "--daemon")
    stopped = run_module("ipvs_config", {"sync_daemons": [], "namespace": ns})
    assert stopped["commands"] == ["ipvsadm --stop-daemon master"]
    assert ipvsadm(ns, "-L", "--daemon").strip() == ""


@pytest.mark.parametrize("args, message", [
    ({"sync_daemons": [{"state": "master", "interface": "eth0", "syncid": 256}]}, "sync_daemons[0].syncid: 256 is out of range 0..255"),
    ({"sync_daemons": [{"state": "master", "interface": "eth0", "mcast_group": "10.0.0.1"}]},
     "sync_daemons[0].mcast_group: 10.0.0.1 is not a multicast address"),
    ({"sync_daemons": [{"state": "backup", "interface": "eth0"}, {"state": "backup", "interface": "eth1"}]},
     "sync_daemons[1].state: a backup daemon is listed twice"),
    ({"timeouts": {"tcp": -1}}, "timeouts.tcp: -1 is out of range"),
])
def test_bad_input_names_the_field(netns, args, message):
    result = run_module("ipvs_config", dict(args, namespace=netns()))
    assert result.get("failed") and result["msg"].startswith(message), result
