"""site.yml's pre-flight across hosts: checks that need no kernel, run against the controller itself.

Both "directors" are the controller (connection local): the validation play only gathers facts
and runs the roles' validate entry points, and must stop before the play that changes hosts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.ansible import ansible_env
from tests.support.collection import ROOT


def _site(tmp_path: Path, inventory: dict) -> str:
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps(inventory))
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(path), str(ROOT / "playbooks" / "site.yml")]
    run = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), timeout=300, check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert "PLAY [LVS real servers]" not in out and "PLAY [LVS directors]" not in out, out[-3000:]
    return out


def _inventory(**group_vars) -> dict:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return {"all": {"vars": dict({"lvs_mode": "dr", "lvs_director_interface": "eth0", "lvs_real_server_interface": "eth0",
                                  "lvs_virtual_services": [{"address": "192.0.2.10", "port": 80}]}, **group_vars),
                    "children": {"lvs_directors": {"hosts": {"dir1": local, "dir2": local}},
                                 "lvs_real_servers": {"hosts": {"rs1": dict(local, ansible_host="192.0.2.11")}}}}}


def test_two_directors_with_the_same_static_vip_stop_the_play(tmp_path):
    out = _site(tmp_path, _inventory())
    assert "lvs_virtual_services: 192.0.2.10/32 would be a static VIP of more than one director (dir1, dir2)" in out, out[-3000:]


def test_bad_role_forwarding_names_the_variable(tmp_path):
    out = _site(tmp_path, _inventory(lvs_mode="dsr"))
    assert "lvs_mode: dsr is not one of nat, dr, tun" in out, out[-3000:]


def test_fullnat_on_a_dr_service_names_the_field(tmp_path):
    out = _site(tmp_path, _inventory(lvs_virtual_services=[{"address": "192.0.2.10", "port": 80, "fullnat": True}]))
    assert "director_services[0].real_servers[0].forwarding: dr, but fullnat needs nat real servers" in out, out[-3000:]
