"""Run the collection's modules for real (inside the lab guest) and read the kernel table back.

A module runs as Ansible runs it on a target: its own Python process, arguments as
ANSIBLE_MODULE_ARGS on stdin, JSON on stdout. Check and diff mode are the same internal
flags Ansible sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

from tests.support.collection import ensure_importable

MODULE_TIMEOUT = 60


def run_module(name: str, args: dict[str, t.Any], check: bool = False, diff: bool = False) -> dict[str, t.Any]:
    """Run lvs.ipvs.<name> with ``args``; returns its JSON result (``failed`` set on failure)."""
    base = ensure_importable()
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff,
                                           _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}
    env = dict(os.environ, PYTHONPATH=str(base))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.lvs.ipvs.plugins.modules.%s" % name],
                          input=json.dumps(payload), capture_output=True, text=True, env=env,
                          timeout=MODULE_TIMEOUT, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc %d)\nstdout: %s\nstderr: %s"
                             % (name, proc.returncode, proc.stdout, proc.stderr)) from None
    if proc.returncode != 0:
        result.setdefault("failed", True)
    return result


def ipvsadm(ns: str, *args: str) -> str:
    """Run ipvsadm in namespace ``ns`` (only to read the table back for assertions)."""
    proc = subprocess.run(["ip", "netns", "exec", ns, "ipvsadm", *args], capture_output=True, text=True,
                          timeout=30, check=True)
    return proc.stdout


def saved(ns: str) -> str:
    """The kernel table as ``ipvsadm -Sn`` prints it."""
    return ipvsadm(ns, "-Sn")


def quartet(name: str, args: dict[str, t.Any], ns: str) -> tuple[dict, dict]:
    """check -> apply -> idempotent check -> idempotent apply, asserting ``changed`` each time.

    Also asserts that check mode left the kernel table untouched and predicted exactly what
    the real run then did. Returns the (check, apply) results.
    """
    args = dict(args, namespace=ns)
    start = saved(ns)
    checked = run_module(name, args, check=True, diff=True)
    assert not checked.get("failed"), checked
    assert checked["changed"] is True, checked
    assert saved(ns) == start, "check mode changed the kernel table"
    applied = run_module(name, args, diff=True)
    assert not applied.get("failed"), applied
    assert applied["changed"] is True, applied
    assert applied["commands"] == checked["commands"]
    assert _strip_counters(applied.get("after")) == _strip_counters(checked.get("after")), "check-mode prediction differs"
    assert applied["diff"] == checked["diff"]
    end = saved(ns)
    again = run_module(name, args, check=True)
    assert again["changed"] is False, again
    assert again["commands"] == []
    again = run_module(name, args)
    assert again["changed"] is False, again
    assert saved(ns) == end
    return checked, applied


def _strip_counters(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {k: _strip_counters(v) for k, v in value.items() if k not in ("stats", "rates")}
    if isinstance(value, list):
        return [_strip_counters(v) for v in value]
    return value
