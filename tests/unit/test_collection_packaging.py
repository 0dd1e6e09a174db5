"""The collection as users get it: ansible-doc renders each module, galaxy builds and installs it."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.ansible import ansible_env
from tests.support.collection import ROOT

MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
BIN = Path(sys.executable).parent


def test_every_module_is_in_the_action_group():
    runtime = (ROOT / "meta" / "runtime.yml").read_text()
    for name in MODULES:
        assert "    - %s\n" % name in runtime


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_module(name):
    proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "--json", "lvs.ipvs.%s" % name],
                          capture_output=True, text=True, env=ansible_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["lvs.ipvs.%s" % name]
    assert doc["doc"]["short_description"]
    assert "namespace" in doc["doc"]["options"]
    assert doc["examples"].count("lvs.ipvs.") >= 2
    assert doc["return"]
    text = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "lvs.ipvs.%s" % name], capture_output=True,
                          text=True, env=ansible_env(), timeout=120, check=True).stdout
    assert "check_mode" in text and "pyroute2" in text


def test_galaxy_build_produces_an_installable_artifact(tmp_path):
    out = tmp_path / "dist"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
                   capture_output=True, text=True, env=ansible_env(), timeout=300, check=True)
    (artifact,) = out.glob("lvs-ipvs-*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert {"plugins/modules/ipvs_service.py", "plugins/module_utils/_ipvs_netlink.py", "meta/runtime.yml"} <= names
    assert not [n for n in names if n.startswith((".venv", ".lab", ".collections", "lab/")) or "__pycache__" in n]
    dest = tmp_path / "installed"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p", str(dest), str(artifact)],
                   capture_output=True, text=True, env=ansible_env(), timeout=300, check=True)
    assert (dest / "ansible_collections" / "lvs" / "ipvs" / "plugins" / "modules" / "ipvs_info.py").exists()
