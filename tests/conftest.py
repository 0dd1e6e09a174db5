"""Shared pytest setup: make the repository's ``lab`` package importable and load its plugin.

``@pytest.mark.lab`` tests run inside user-mode Linux guests (see lab/README.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

pytest_plugins = ["lab.pytest_plugin"]

# The repository is the collection: make it importable as ansible_collections.lvs.ipvs.
from tests.support.collection import ensure_importable  # noqa: E402

ensure_importable()
