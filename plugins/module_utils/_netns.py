# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entering a network namespace: the one setns() the collection's modules share.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.
Callers turn the OSError into their own error, naming what they were doing.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000


def netns_path(name: str) -> str:
    """A namespace name (``ip netns``) or an absolute path to a namespace file."""
    return name if name.startswith("/") else os.path.join("/run/netns", name)


def setns(fd: int) -> None:
    """Move this process into the network namespace open as ``fd``; raises OSError."""
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
        return
    # Python < 3.12
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
