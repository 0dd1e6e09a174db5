"""The collection as users get it: ansible-doc renders each module, galaxy builds and installs it."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from ansible.release import __version__ as ANSIBLE_CORE
from packaging.specifiers import SpecifierSet

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
    attributes = doc["doc"]["attributes"]
    assert {"check_mode", "diff_mode", "platform", "action_group"} <= set(attributes)
    assert attributes["action_group"]["membership"] == ["lvs.ipvs.ipvs"]
    assert attributes["platform"]["platforms"] == "linux"
    assert doc["doc"]["seealso"]
    # commands is documented exactly where it is returned (not by the read-only modules)
    notes = " ".join(doc["doc"].get("notes", []))
    assert ("commands" in doc["return"]) == ("RV(commands)" in notes), name
    text = subprocess.run([str(BIN / "ansible-doc"), "-t", "module", "lvs.ipvs.%s" % name], capture_output=True,
                          text=True, env=ansible_env(), timeout=120, check=True).stdout
    assert "check_mode" in text and "pyroute2" in text


# What the tarball holds at its top level: the collection's runtime content, its docs and metadata.
SHIPPED_TOP = {"MANIFEST.json", "FILES.json", "README.md", "COPYING", "CHANGELOG.rst", "changelogs", "docs", "meta",
               "playbooks", "plugins", "roles", "requirements.txt", "bindep.txt"}
# Tracked files that do not ship (galaxy.yml build_ignore), as path prefixes.
NOT_SHIPPED = (".ci/", ".gitignore", ".ansible-lint", "Makefile", "requirements-dev.txt", "scripts/", "tests/",
               "benchmarks/", "lab/", "molecule/", "playbooks/lab_demo.yml", "galaxy.yml")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
                   capture_output=True, text=True, env=ansible_env(), timeout=300, check=True)
    (path,) = out.glob("lvs-ipvs-*.tar.gz")
    return path


def _tracked_files() -> list[str]:
    """Files of the work tree git knows or would add (tracked, or untracked and not ignored)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def test_tarball_holds_exactly_the_runtime_content(artifact, capsys):
    with tarfile.open(artifact) as tar:
        members = tar.getmembers()
    files = sorted(m.name for m in members if m.isfile())
    assert {n.split("/")[0] for n in files} == SHIPPED_TOP
    forbidden = ("tests/", "lab/", "molecule/", "benchmarks/", "scripts/", ".", "changelogs/.plugin-cache")
    assert not [n for n in files if n.startswith(forbidden) or "/." in n or "__pycache__" in n or n.endswith(".pyc")]
    assert "playbooks/lab_demo.yml" not in files
    # Every tracked file outside the ignored paths ships, so nothing is left out by a too wide pattern.
    expected = {f for f in _tracked_files() if not f.startswith(NOT_SHIPPED)}
    assert set(files) - {"MANIFEST.json", "FILES.json"} == expected
    with capsys.disabled():
        print("\ntarball %s: %d bytes, %d files" % (artifact.name, artifact.stat().st_size, len(files)))


def test_galaxy_build_produces_an_installable_artifact(artifact, tmp_path):
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert {"plugins/modules/ipvs_service.py", "plugins/module_utils/_ipvs_netlink.py", "meta/runtime.yml"} <= names
    assert not [n for n in names if n.startswith((".venv", ".lab", ".collections", "lab/")) or "__pycache__" in n]
    dest = tmp_path / "installed"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p", str(dest), str(artifact)],
                   capture_output=True, text=True, env=ansible_env(), timeout=300, check=True)
    assert (dest / "ansible_collections" / "lvs" / "ipvs" / "plugins" / "modules" / "ipvs_info.py").exists()


def test_claimed_ansible_core_versions_are_the_tested_ones():
    """requires_ansible and the roles' min_ansible_version claim only what this venv tests (no older core
    is tested: lowering the floor needs a second venv with that core in CI)."""
    core = ANSIBLE_CORE
    spec = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]
    assert core in SpecifierSet(spec)
    floor = spec.lstrip(">=").split(",")[0]
    assert floor.split(".")[:2] == core.split(".")[:2], "requires_ansible %s, tested with ansible-core %s" % (spec, core)
    for meta in sorted((ROOT / "roles").glob("*/meta/main.yml")):
        assert str(yaml.safe_load(meta.read_text())["galaxy_info"]["min_ansible_version"]) == ".".join(floor.split(".")[:2]), meta
