# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files a module writes: proven writable before the first change, then replaced atomically.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.
"""

from __future__ import annotations

import os
import tempfile
import typing as t


def check_writable(path: str, field: str) -> str | None:
    """Prove that ``path`` can be replaced atomically (a temporary file in its directory).

    Returns an error text naming ``field``, or None. Nothing is left behind.
    """
    directory = os.path.dirname(path) or "."
    if os.path.isdir(path):
        return "%s: %s is a directory" % (field, path)
    if not os.path.isdir(directory):
        return "%s: directory %s does not exist" % (field, directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".lvs-ipvs-probe-", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return "%s: cannot write in %s (%s)" % (field, directory, exc.strerror)
    return None


def write_atomic(path: str, text: str, move: t.Callable[[str, str], t.Any] | None = None, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` atomically: a temporary file in its directory, fsync, rename.

    ``move`` does the rename (a module passes ``module.atomic_move``, which keeps the target's
    SELinux context); nothing is left behind when it fails. Raises OSError.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".lvs-ipvs.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        (move or os.rename)(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
