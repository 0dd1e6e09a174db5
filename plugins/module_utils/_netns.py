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


NETNS_DIR = "/run/netns"
MAX_NAME = 255


def netns_path(name: str) -> str:
    """A namespace name (``ip netns``) or an absolute path to a namespace file.

    A name must be plain (no ``/``, not ``.`` or ``..``, not empty): ``ip netns`` keeps
    namespaces as files directly under /run/netns, and anything else would escape it (or,
    for ``""``, silently mean the caller's own namespace). An absolute path is taken as
    given, but only in normal form (no ``..``, ``.`` or doubled ``/``). Raises ValueError
    with a message that names no field (callers prefix ``namespace``).
    """
    if not isinstance(name, str):
        raise ValueError("must be a string")
    if "\0" in name:
        raise ValueError("contains a NUL character")
    if len(name) > 4096:
        raise ValueError("is %d characters long" % len(name))
    if name.startswith("/"):
        parts = name.split("/")[1:]
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError("%r is not an absolute path in normal form (no '..', '.' or '//')" % name[:80])
        return name
    if name in ("", ".", "..") or "/" in name or len(name) > MAX_NAME or name.strip() != name:
        raise ValueError("%r is not a namespace name (a plain name under %s, as `ip netns list` shows, "
                         "or an absolute path)" % (name[:80], NETNS_DIR))
    return os.path.join(NETNS_DIR, name)


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


def enter(name: str) -> str | None:
    """Move this process into network namespace ``name`` (a name or a path) for all later I/O.

    Returns None, or the reason it could not (the callers raise it as their own error on the
    ``namespace`` field).
    """
    try:
        path = netns_path(name)
    except ValueError as exc:
        return str(exc)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        return "network namespace %r not found (%s)" % (name, exc.strerror)
    try:
        setns(fd)
    except OSError as exc:
        return "cannot enter network namespace %r: %s" % (name, exc.strerror)
    finally:
        os.close(fd)
    return None
