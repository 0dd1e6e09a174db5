"""Expose the repository as ansible_collections.lvs.ipvs (a symlink under .collections/)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".collections"


def ensure_importable() -> Path:
    """Create the symlink if needed and put its base on sys.path; returns the base."""
    link = COLLECTIONS / "ansible_collections" / "lvs" / "ipvs"
    if not link.is_symlink() and not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return COLLECTIONS
