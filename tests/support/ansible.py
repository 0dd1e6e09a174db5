"""Run ansible-playbook against localhost with this repository as the lvs.ipvs collection."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.collection import ROOT, ensure_importable

PLAYBOOKS = ROOT / "tests" / "integration" / "playbooks"
PLAYBOOK_TIMEOUT = 600


@dataclasses.dataclass
class PlaybookRun:
    rc: int
    output: str


def ansible_env() -> dict[str, str]:
    base = ensure_importable()
    return dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(base),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="true",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_LOCAL_TEMP="/tmp/ansible-local",
        ANSIBLE_REMOTE_TEMP="/tmp/ansible-remote",
    )


def ansible_playbook(playbook: str | Path, extra_vars: dict | None = None, *args: str) -> PlaybookRun:
    """Run a playbook (a name under tests/integration/playbooks, or a path); output is stdout+stderr."""
    path = Path(playbook)
    if not path.is_absolute():
        path = PLAYBOOKS / path
    cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(path)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), timeout=PLAYBOOK_TIMEOUT, check=False)
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)
