# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wiring shared by the IPVS modules: connect, plan, apply, report.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

The only place (besides the modules themselves) that talks to Ansible: errors from the
pure layers are typed, and become ``fail_json`` here.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
import typing as t

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_ipvsadm as codec
from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_netlink as netlink
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import IPVSValidationError, take_warnings
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import PlanError, apply_ops

NAMESPACE_SPEC = {"namespace": {"type": "str"}}

# Changing runs are serialized per network namespace with an flock() on a file here; the
# kernel drops the lock when the process ends, however it ends (SIGKILL included).
LOCK_DIR = "/run/lock"
LOCK_TIMEOUT = 120.0
LOCK_POLL = 0.2
_held: list[int] = []


def namespace_lock(timeout: float = LOCK_TIMEOUT, lock_dir: str = LOCK_DIR) -> str | None:
    """Take the IPVS lock of the network namespace this process is in (bounded wait).

    Returns None when taken, else an error text. The lock file is named after the namespace's
    inode, so a name and a path of the same namespace share one lock.
    """
    try:
        st = os.stat("/proc/self/ns/net")
        os.makedirs(lock_dir, exist_ok=True)
        path = os.path.join(lock_dir, "lvs.ipvs-netns-%d-%d.lock" % (st.st_dev, st.st_ino))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        return "cannot create the IPVS lock in %s: %s" % (lock_dir, exc.strerror)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                return "cannot take the IPVS lock %s: %s" % (path, exc.strerror)
        if time.monotonic() >= deadline:
            os.close(fd)
            return ("another run is changing the IPVS table of this network namespace (lock %s held for more than %d s); "
                    "nothing was changed" % (path, timeout))
        time.sleep(LOCK_POLL)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
    except OSError:
        pass
    _held.append(fd)
    return None


def connect(module: t.Any, pyroute2: bool = False, lock: bool = False, bulk: bool = True) -> t.Any:
    """Enter the requested network namespace and open the IPVS socket.

    ``pyroute2``: the module uses pyroute2, which must be installed.
    ``lock``: the run may change the table: take the namespace's lock first (bounded wait),
    so that the dump the caller takes next is not stale when it applies.
    ``bulk=False``: the module reads and changes single objects only (a smaller socket buffer).
    """
    if pyroute2 and not netlink.has_pyroute2():
        module.fail_json(msg=missing_required_lib("pyroute2"))
    try:
        if module.params.get("namespace") is not None:
            netlink.enter_namespace(module.params["namespace"])
    except netlink.IPVSKernelError as exc:
        module.fail_json(msg=str(exc))
    if lock:
        problem = namespace_lock()
        if problem:
            module.fail_json(msg="namespace: %s" % problem)
    try:
        return netlink.IPVSAdapter(run=module.run_command, bulk=bulk)
    except netlink.IPVSKernelError as exc:
        module.fail_json(msg=str(exc))


def warn_all(module: t.Any) -> None:
    """Pass the model's warnings (input the kernel holds but new input should avoid) to Ansible."""
    for text in take_warnings():
        module.warn(text)


def validated(module: t.Any, func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
    """Run a pure validation/planning step; bad input fails the task naming the field.

    The model is strict unless the step says otherwise (ipvs_table's config and parsed text are
    lenient: what a kernel holds is accepted with a warning); warnings go to Ansible.
    """
    try:
        out = func(*args, **kwargs)
        warn_all(module)
        return out
    except (IPVSValidationError, PlanError) as exc:
        module.fail_json(msg=str(exc))
    except (TypeError, AttributeError, KeyError, RecursionError, OverflowError) as exc:
        # A shape no check foresaw: still an error, never a traceback.
        module.fail_json(msg="invalid input (%s: %s)" % (type(exc).__name__, str(exc)[:200]))


def execute(module: t.Any, adapter: t.Any, have: list[dict], ops: list[dict],
            read_back: t.Callable[[], list[dict]] | None = None, **result: t.Any) -> tuple[list[dict], dict]:
    """Apply ``ops`` (unless check mode) and return (after table, result dict).

    In check mode ``after`` is the planner's prediction; otherwise the table is read back:
    all of it, or what ``read_back()`` returns (the part ``have`` holds, for a module that
    read only one service).
    """
    result.update(changed=bool(ops), commands=codec.commands(ops))
    if not ops:
        return have, result
    if module.check_mode:
        return validated(module, apply_ops, have, ops), result
    try:
        adapter.apply(ops)
    except netlink.IPVSKernelError as exc:
        done = ops[:exc.applied]
        module.fail_json(msg=str(exc), commands=codec.commands(ops), applied_commands=codec.commands(done),
                         failed_command=codec.commands(ops[exc.applied:exc.applied + 1])[0])
    return read_back() if read_back is not None else adapter.dump(), result


def diff(before: t.Iterable[dict], after: t.Iterable[dict], header: str) -> dict[str, str]:
    """Ansible diff of the affected table part in ``ipvsadm-save -n`` form (thresholds kept)."""
    return {
        "before": codec.render_restore(before),
        "after": codec.render_restore(after),
        "before_header": "%s (before)" % header,
        "after_header": "%s (after)" % header,
    }
