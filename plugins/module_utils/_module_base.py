# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule every lvs.ipvs module uses: error messages of bounded length.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Ansible's own argument checks echo the whole offending value ("value of state must be one
of: ..., got: <20,000 characters>"); here any long run without spaces in a message is cut.
"""

from __future__ import annotations

import math
import re
import typing as t

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule

MAX_WORD = 120
MAX_MSG = 2000
_LONG = re.compile(r"\S{%d,}" % (MAX_WORD + 1))


def cut_message(msg: str) -> str:
    """Long words cut to MAX_WORD characters (with their length), the message to MAX_MSG."""
    msg = _LONG.sub(lambda m: "%s...(%d characters)" % (m.group(0)[:MAX_WORD], len(m.group(0))), msg)
    if len(msg) > MAX_MSG:
        msg = msg[:MAX_MSG] + "...(%d characters)" % len(msg)
    return msg


def shape_problem(spec: t.Mapping[str, t.Any], params: t.Any, prefix: str = "") -> str | None:
    """The first option whose value has the wrong shape for ``spec`` (a dict option given a
    list, a list of dicts holding a string, a float that is not finite), named by its path.

    Ansible's own checks say "dictionary requested, could not parse JSON or key=value"
    without naming the option, or raise on ``.inf``; this runs first so that they never do.
    """
    if not isinstance(params, dict):
        return None
    for name, sub in spec.items():
        if name not in params or params[name] is None:
            continue
        value, path = params[name], prefix + name
        bad = _non_finite(value)
        if bad is not None:
            return "%s: not a finite number" % (path + bad)
        kind, elements, options = sub.get("type", "str"), sub.get("elements"), sub.get("options")
        numbers: list[t.Any] = []
        if kind in ("int", "float"):
            numbers = [value]
        elif elements in ("int", "float"):
            numbers = value if isinstance(value, list) else str(value).split(",")
        for item in numbers:
            if isinstance(item, str) and len(item.strip()) > 40:
                return "%s: a %d-character string is not a number" % (path, len(item))
        if kind == "dict" and not isinstance(value, dict):
            return "%s: %s is not a dictionary" % (path, cut_message(repr(value))[:100])
        if kind == "list" and elements == "dict":
            if not isinstance(value, list):
                return "%s: %s is not a list of dictionaries" % (path, cut_message(repr(value))[:100])
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    return "%s[%d]: %s is not a dictionary" % (path, i, cut_message(repr(item))[:100])
                if options:
                    problem = shape_problem(options, item, "%s[%d]." % (path, i))
                    if problem:
                        return problem
        elif kind == "dict" and options:
            problem = shape_problem(options, value, path + ".")
            if problem:
                return problem
    return None


def _non_finite(value: t.Any, depth: int = 0) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if depth < 20 and isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, depth + 1)
            if found is not None:
                return ".%s%s" % (key, found)
    if depth < 20 and isinstance(value, list):
        for i, item in enumerate(value):
            found = _non_finite(item, depth + 1)
            if found is not None:
                return "[%d]%s" % (i, found)
    return None


class Module(AnsibleModule):
    """AnsibleModule with ``msg`` cut to a readable length on failure, and arguments of the
    wrong shape refused naming the option (never a traceback from the argument checks)."""

    def __init__(self, argument_spec: dict[str, t.Any], **kwargs: t.Any) -> None:
        try:
            params = basic._load_params()  # pylint: disable=protected-access
        except Exception:  # pylint: disable=broad-except
            params = None  # AnsibleModule reports it its own way
        problem = shape_problem(argument_spec, params) if params is not None else None
        if not problem:
            try:
                super().__init__(argument_spec=argument_spec, **kwargs)
                return
            except (OverflowError, RecursionError, TypeError, ValueError, AttributeError) as exc:
                problem = "invalid arguments: %s" % exc
        # Fail the Ansible way, through a module that takes every option as given.
        super().__init__(argument_spec={name: {"type": "raw"} for name in argument_spec},
                         supports_check_mode=True)
        self.fail_json(msg=problem)

    def fail_json(self, msg: t.Any = None, **kwargs: t.Any) -> t.NoReturn:  # type: ignore[override]
        if isinstance(msg, str):
            msg = cut_message(msg)
        super().fail_json(msg=msg, **kwargs)
