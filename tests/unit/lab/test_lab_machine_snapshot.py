"""lab/machine_snapshot.py's enabled units: the links `systemctl enable` writes, read from disk."""

from __future__ import annotations

import importlib.util
import os

from tests.support.collection import ROOT


def load():
    spec = importlib.util.spec_from_file_location("machine_snapshot", ROOT / "lab" / "machine_snapshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_enabled_units_are_the_wants_and_requires_links(tmp_path):
    wants = tmp_path / "multi-user.target.wants"
    wants.mkdir()
    (tmp_path / "lvs-director.service").write_text("[Unit]\n")
    os.symlink(tmp_path / "lvs-director.service", wants / "lvs-director.service")
    (tmp_path / "sockets.target.requires").mkdir()
    os.symlink("/lib/systemd/system/ssh.socket", tmp_path / "sockets.target.requires" / "ssh.socket")
    (wants / "not-a-link.service").write_text("")  # a plain file is no enablement
    assert load().enabled_links(str(tmp_path)) == [
        "multi-user.target.wants/lvs-director.service -> %s" % (tmp_path / "lvs-director.service"),
        "sockets.target.requires/ssh.socket -> /lib/systemd/system/ssh.socket",
    ]
