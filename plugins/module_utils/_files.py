# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files a module will write: proven writable before the first change.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.
"""

from __future__ import annotations

import os
import tempfile


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
