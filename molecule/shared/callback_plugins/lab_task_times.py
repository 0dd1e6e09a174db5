# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a lab playbook's time goes: after the recap, the slowest tasks and the whole run."""

from __future__ import annotations

DOCUMENTATION = r"""
name: lab_task_times
type: aggregate
short_description: The slowest tasks of a run, after the recap (lab scenarios)
description:
  - Times each task from its start to the next task's start (all hosts of the task together), and
    prints the slowest ones and the total after the play recap, as C(TASK TIMES) lines.
options:
  top:
    description: How many tasks to print.
    type: int
    default: 12
    env:
      - name: LAB_TASK_TIMES_TOP
"""

import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lab_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._start = time.monotonic()
        self._current = None
        self._times = {}

    def _close(self):
        if self._current is not None:
            name, t0 = self._current
            self._times[name] = self._times.get(name, 0.0) + time.monotonic() - t0
            self._current = None

    def _open(self, task):
        self._close()
        self._current = ("%s | %s" % (task.get_path() or "", task.get_name()), time.monotonic())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._open(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._open(task)

    def v2_playbook_on_play_start(self, play):
        self._close()

    def v2_playbook_on_stats(self, stats):
        self._close()
        top = int(self.get_option("top"))
        self._display.display("TASK TIMES: %.1f s in all, %.1f s in %d tasks; the slowest:" % (
            time.monotonic() - self._start, sum(self._times.values()), len(self._times)))
        for name, seconds in sorted(self._times.items(), key=lambda kv: -kv[1])[:top]:
            self._display.display("TASK TIMES: %7.1f s  %s" % (seconds, name))
