"""Fixtures for tests that run inside a lab guest (``@pytest.mark.lab``).

- ``netns()``: a fresh network namespace ``t<short-id>`` with lo up, deleted at teardown.
- ``topology``: bridges (guest root namespace, no uplink) and namespace hosts, see lab/netns.py.
- ``ipvsadm(ns)``: read ``ipvsadm -Sn`` / ``-Ln`` of a namespace (or a Host) for assertions.
"""
from __future__ import annotations

from typing import Callable, Iterator

import pytest

from lab import netns as labnet


def _guest_only(fixture: str) -> None:
    if not labnet.in_guest():
        pytest.fail(f"the {fixture!r} fixture only works inside a lab guest: mark the test with @pytest.mark.lab",
                    pytrace=False)


@pytest.fixture
def netns() -> Iterator[labnet.NetnsFactory]:
    """Factory: ``name = netns()`` creates a namespace with lo up; all are deleted at teardown."""
    _guest_only("netns")
    factory = labnet.NetnsFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def topology() -> Iterator[labnet.Topology]:
    """``topology.bridge(name)``, ``topology.host(name, links=[(bridge, addr)], gateway=...)``, ``topology.http_server(host, port, body)``."""
    _guest_only("topology")
    with labnet.Topology() as topo:
        yield topo


@pytest.fixture
def ipvsadm() -> Callable[[object], labnet.Ipvsadm]:
    """``ipvsadm(ns).save()`` -> ``ipvsadm -Sn`` text, ``.list()`` -> ``-Ln``, ``.rules()`` -> save lines."""
    _guest_only("ipvsadm")
    labnet.load_ipvs()

    def view(ns: object = None) -> labnet.Ipvsadm:
        return labnet.Ipvsadm(ns)  # type: ignore[arg-type]

    return view
