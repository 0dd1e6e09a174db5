"""Real-kernel test lab for lvs.ipvs: throw-away user-mode Linux guests with IPVS.

See lab/README.md.  Host side: :func:`lab.uml.run_in_guest` and ``python -m lab``;
pytest side: ``lab.pytest_plugin``; inside a guest: :mod:`lab.netns`.
"""
from __future__ import annotations

from lab.uml import LabError, Result, run_in_guest

__all__ = ["LabError", "Result", "run_in_guest"]
