"""Pure parts of lab/machines.py: which CPUs a topology runs on, which names a topology may have."""

from __future__ import annotations

import pytest

from lab import machines as M
from lab import uml


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(uml, "host_cpus", lambda: [0, 1])


def test_a_topology_runs_on_every_lab_cpu_by_default(two_cpus, monkeypatch):
    monkeypatch.delenv("LVS_LAB_MACHINE_CPUS", raising=False)
    assert M.machine_cpus() == [0, 1]


def test_a_lane_pins_every_guest_of_its_topology_to_its_cpu(two_cpus, monkeypatch):
    monkeypatch.setenv("LVS_LAB_MACHINE_CPUS", "1")
    state = M.plan("ha_dr", {"hosts": [{"name": "dir1"}, {"name": "dir2"}, {"name": "rs1"}]})
    assert [h["cpu"] for h in state["hosts"]] == [1, 1, 1]
    assert state["netns"] == "lvsm-ha_dr"


@pytest.mark.parametrize("raw", ["2", "a", ",", "0,5"])
def test_cpus_the_lab_may_not_use_are_refused_naming_the_variable(two_cpus, monkeypatch, raw):
    monkeypatch.setenv("LVS_LAB_MACHINE_CPUS", raw)
    with pytest.raises(M.MachinesError, match="LVS_LAB_MACHINE_CPUS"):
        M.machine_cpus()


def test_topology_names_follow_the_scenarios_and_host_names_stay_host_names():
    assert M.lab_dir("ha_dr").name == "ha_dr"
    with pytest.raises(M.MachinesError, match="must match"):
        M.lab_dir("HA dr")
    with pytest.raises(M.MachinesError, match=r"hosts\[0\].name"):
        M.plan("t", {"hosts": [{"name": "rs_1"}]})
