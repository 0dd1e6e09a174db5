"""Every feature of the keepalived role's template, rendered and accepted by keepalived itself.

Inside a lab guest: a namespace with the directors' interfaces (eth0, eth1: veth); the role's
pre-flight tasks (kernel probe included) and its templates for two directors
(playbooks/keepalived_render); `keepalived --config-test` (the role's validate command) inside
the namespace must accept both configurations: it exits non-zero on any warning, such as an
ignored keyword or a truncated password.
"""
from __future__ import annotations

import pytest

from lab import netns as labnet
from tests.support.ansible import ansible_playbook
from tests.support.collection import ROOT

pytestmark = pytest.mark.lab

PLAYS = ROOT / "tests" / "integration" / "playbooks" / "keepalived_render"


def test_every_feature_renders_and_passes_keepalived_config_test(netns, tmp_path):
    ns = netns()
    # veth pairs: keepalived needs multicast-capable interfaces (a dummy is not).
    labnet.ip_batch(["link add eth0 type veth peer name peer0", "link add eth1 type veth peer name peer1",
                     "link set eth0 up", "link set eth1 up", "link set peer0 up", "link set peer1 up"], ns=ns)
    extra = {"render_dir": str(tmp_path), "render_ns": ns, "role_dir": str(ROOT / "roles" / "keepalived")}
    run = ansible_playbook(PLAYS / "render.yml", extra, "-i", str(PLAYS / "inventory.yml"))
    assert run.rc == 0, run.output
    assert "s3cret" not in run.output
    one, two = (tmp_path / "dir1.conf").read_text(), (tmp_path / "dir2.conf").read_text()
    assert "s3cret" not in one and "$LVS_AUTH_0_VI_FRONT=s3cret" in (tmp_path / "dir1.secrets").read_text()
    for snippet in (
        "lvs_sync_daemon eth1 inst VI_FRONT id 9 maxlen 1400 port 8848 ttl 1 group 224.0.0.81",
        "    vrrp_garp_master_refresh 60\n    vrrp_skip_check_adv_addr\n",
        "vrrp_sync_group G_LB {\n    group {\n        VI_FRONT\n        VI_BACK\n    }\n    notify_master \"/bin/true sync master\"",
        "    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    advert_int 1\n",
        "    priority 150\n    advert_int 0.5\n    version 3\n    preempt_delay 5\n",
        "    unicast_src_ip 192.0.2.1\n    unicast_peer {\n        192.0.2.2\n    }\n",
        "        auth_type PASS\n        auth_pass $LVS_AUTH_0_VI_FRONT\n",
        "        192.0.2.11/24 dev eth0 label eth0:vip\n",
        "    virtual_ipaddress_excluded {\n        2001:db8::10/64 dev eth0\n    }\n",
        "    track_interface {\n        eth1 weight -20\n    }\n    track_script {\n        chk_weighted weight -40\n",
        "    garp_master_delay 2\n    garp_master_repeat 3\n    garp_master_refresh 60\n    garp_lower_prio_repeat 1\n",
        "    notify_stop \"/bin/true stop\"\n",
        "    persistence_timeout 300\n    persistence_granularity 255.255.255.0\n",
        "    sorry_server 10.10.0.99 8080\n    sorry_server_lvs_method NAT\n    sorry_server_inhibit\n",
        "    quorum 2\n    hysteresis 1\n    quorum_up \"/bin/true up\"\n",
        "                status_code 200 300-399\n",
        "                digest 9b3a0c85a887a256d6939da88aabd8cd\n",
        "        SSL_GET {\n            connect_port 8443\n            enable_sni\n",
        "            misc_path \"/bin/true\"\n            misc_dynamic\n",
        "        uthreshold 100\n        lthreshold 10\n",
        "virtual_server 192.0.2.10 53 {\n    lvs_sched sh\n    sh-fallback\n    sh-port\n    ops\n    protocol UDP\n",
        "    real_server 10.10.0.11 {\n        weight 1\n        lvs_method TUN type gue port 6080 csum\n",
        "    real_server 10.10.0.12 {\n        weight 1\n        lvs_method TUN type gre nocsum\n",
        "virtual_server fwmark 8 {\n    lvs_sched lc\n    ip_family inet6\n    persistence_timeout 60\n",
        "virtual_server 2001:db8::10 443 {\n    lvs_sched rr\n    protocol SCTP\n",
    ):
        assert snippet in one, f"missing in dir1's configuration:\n{snippet}\n---\n{one}"
    assert "    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority 140\n" in two
    assert "    unicast_src_ip 192.0.2.2\n    unicast_peer {\n        192.0.2.1\n    }\n" in two
    assert "unicast_peer" not in one.split("vrrp_instance VI_BACK")[1].split("vrrp_instance")[0]
