"""The roles' argument specs are generated from one schema and are up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_role_specs_are_generated_from_the_schema():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "role_specs.py"), "--check"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr


def test_director_service_fields_match_the_model():
    from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import REAL_SERVER_FIELDS, SCHEDULERS, SERVICE_FIELDS

    spec = yaml.safe_load((ROOT / "roles" / "director" / "meta" / "argument_specs.yml").read_text())
    services = spec["argument_specs"]["main"]["options"]["director_services"]["options"]
    assert set(SERVICE_FIELDS) <= set(services)
    assert set(REAL_SERVER_FIELDS) <= set(services["real_servers"]["options"])
    assert services["scheduler"]["choices"] == list(SCHEDULERS)
    assert spec["argument_specs"]["validate"]["options"] == spec["argument_specs"]["main"]["options"]
