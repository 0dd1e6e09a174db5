"""pytest imports test files by basename (no packages under tests/): two files of one name break collection."""

from __future__ import annotations

import collections

from tests.support.collection import ROOT


def test_every_test_file_name_is_unique():
    names = collections.Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
