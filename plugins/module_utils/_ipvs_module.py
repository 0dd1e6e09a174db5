# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wiring shared by the IPVS modules: connect, plan, apply, report.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

The only place (besides the modules themselves) that talks to Ansible: errors from the
pure layers are typed, and become ``fail_json`` here.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_ipvsadm as codec
from ansible_collections.lvs.ipvs.plugins.module_utils import _ipvs_netlink as netlink
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_model import IPVSValidationError
from ansible_collections.lvs.ipvs.plugins.module_utils._ipvs_plan import PlanError, apply_ops

NAMESPACE_SPEC = {"namespace": {"type": "str"}}


def connect(module: t.Any, pyroute2: bool = False) -> t.Any:
    """Enter the requested network namespace and open the IPVS socket.

    ``pyroute2``: the module sends its changes through pyroute2, which must be installed.
    """
    if pyroute2 and not netlink.HAS_PYROUTE2:
        module.fail_json(msg=missing_required_lib("pyroute2"))
    try:
        if module.params.get("namespace") is not None:
            netlink.enter_namespace(module.params["namespace"])
        return netlink.IPVSAdapter(run=module.run_command)
    except netlink.IPVSKernelError as exc:
        module.fail_json(msg=str(exc))


def validated(module: t.Any, func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
    """Run a pure validation/planning step; bad input fails the task naming the field."""
    try:
        return func(*args, **kwargs)
    except (IPVSValidationError, PlanError) as exc:
        module.fail_json(msg=str(exc))


def execute(module: t.Any, adapter: t.Any, have: list[dict], ops: list[dict], **result: t.Any) -> tuple[list[dict], dict]:
    """Apply ``ops`` (unless check mode) and return (after table, result dict).

    In check mode ``after`` is the planner's prediction; otherwise the table is read back.
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
    return adapter.dump(), result


def diff(before: t.Iterable[dict], after: t.Iterable[dict], header: str) -> dict[str, str]:
    """Ansible diff of the affected table part in ``ipvsadm-save -n`` form (thresholds kept)."""
    return {
        "before": codec.render_restore(before),
        "after": codec.render_restore(after),
        "before_header": "%s (before)" % header,
        "after_header": "%s (after)" % header,
    }
