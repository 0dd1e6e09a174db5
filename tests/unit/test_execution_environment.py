"""Execution environments: ansible-builder finds the collection's dependencies in the built artifact,
and the example definition (docs/execution-environment.yml) gives a complete build context.

No container engine or registry here: `ansible-builder create` writes the context (no image)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.support.ansible import ansible_env
from tests.support.collection import ROOT

BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(ROOT)],
                   capture_output=True, text=True, env=ansible_env(), timeout=300, check=True)
    return out / ("lvs-ipvs-%s.tar.gz" % VERSION)


def test_the_artifact_carries_its_dependency_files(artifact):
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt", "COPYING"} <= names


def test_ansible_builder_introspect_lists_pyroute2_and_the_system_packages(artifact, tmp_path):
    dest = tmp_path / "collections"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p", str(dest), str(artifact)],
                   capture_output=True, text=True, env=ansible_env(), timeout=300, check=True)
    proc = subprocess.run([str(BIN / "ansible-builder"), "introspect", "--sanitize", str(dest)],
                          capture_output=True, text=True, timeout=120, check=True)
    data = yaml.safe_load(proc.stdout)
    python = [line.split("#")[0].strip() for line in data["python"]]
    system = [line.split("#")[0].strip() for line in data["system"]]
    assert all("from collection lvs.ipvs" in line for line in data["python"] + data["system"])
    assert [p for p in python if p.startswith("pyroute2")]
    assert {"iproute2 [platform:dpkg]", "iproute [platform:rpm]", "kmod [platform:dpkg platform:rpm]",
            "ipvsadm [platform:dpkg platform:rpm]"} == set(system)


def test_ansible_builder_create_gives_a_complete_build_context(artifact, tmp_path):
    definition = yaml.safe_load((ROOT / "docs" / "execution-environment.yml").read_text())
    shutil.copy(ROOT / "docs" / "execution-environment.yml", tmp_path)
    shutil.copy(artifact, tmp_path)
    context = tmp_path / "context"
    subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(tmp_path / "execution-environment.yml"),
                    "-c", str(context), "--output-filename", "Containerfile"],
                   capture_output=True, text=True, timeout=120, check=True)
    build = context / "_build"
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    (collection,) = requirements["collections"]
    # ansible-galaxy runs in the context's _build directory (COPY _build /build; WORKDIR /build)
    assert collection["type"] == "file"
    assert (build / collection["name"]).is_file(), "the definition names %s, not in the context" % collection["name"]
    assert collection["name"].endswith("lvs-ipvs-%s.tar.gz" % VERSION)
    containerfile = (context / "Containerfile").read_text()
    assert "COPY _build /build" in containerfile and "WORKDIR /build" in containerfile
    assert "introspect" in containerfile and "install-from-bindep" in containerfile
    assert definition["dependencies"]["ansible_core"]["package_pip"] in containerfile
