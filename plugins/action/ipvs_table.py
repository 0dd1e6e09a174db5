# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of lvs.ipvs.ipvs_table: a controller-side ``src`` file is transferred to the target.

The file travels like ``ansible.builtin.copy``'s source (looked up in the role's or playbook's
``files/``, put into the task's remote temporary directory) and the module reads it there. It is
neither templated nor loaded as variables on the controller: a table of thousands of services
costs its bytes on the wire, not a 4 MB templated module argument. Everything else goes to the
module unchanged.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        args = dict(self._task.args)
        src = args.get("src")
        try:
            remote = boolean(args.get("remote_src", False), strict=True)
        except TypeError as exc:
            result.update(failed=True, msg="remote_src: %s" % exc)
            return result
        if src is None or remote or not isinstance(src, str):
            result.update(self._execute_module(module_args=args, task_vars=task_vars))
            return result
        try:
            local = self._find_needle("files", src)
        except AnsibleError as exc:
            result.update(failed=True, msg="src: %s" % exc.message)
            return result
        try:
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()
            # The file name is kept: its extension tells the module the format (src_format=auto).
            remote_path = self._connection._shell.join_path(self._connection._shell.tmpdir, os.path.basename(local))
            self._transfer_file(local, remote_path)
            self._fixup_perms2((self._connection._shell.tmpdir, remote_path))
            args.update(src=remote_path, remote_src=True)
            result.update(self._execute_module(module_args=args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
