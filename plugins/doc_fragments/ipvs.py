# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


# Every module runs on Linux managed hosts and belongs to the group/lvs.ipvs.ipvs action group
# (meta/runtime.yml): the platform and action_group attributes are the same in each fragment below.
class ModuleDocFragment:
    # Options and requirements every IPVS table module shares.
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - Name of the network namespace (as listed by C(ip netns list)) whose IPVS table is managed.
      - Each network namespace has its own IPVS table. Omit to use the namespace Ansible runs in.
      - An absolute path to a namespace file (for example C(/proc/1234/ns/net)) is accepted too, in
        normal form only (no C(..) or C(.) components).
      - A name must be plain (no C(/), not C(.) or C(..)); the empty string is refused, not taken
        as the namespace Ansible runs in.
    type: str
requirements:
  - A kernel with IPVS (C(ip_vs) built in or loadable; it is loaded on first use).
notes:
  - The table is managed over generic netlink (the IPVS family) with the collection's own message
    encoder, which needs nothing beyond Python; neither the C(ipvsadm) tool nor pyroute2 is needed
    (the collection's tests use pyroute2 as an independent cross-check of the encoder).
seealso:
  - name: ipvsadm(8)
    description: The reference for IPVS options and their semantics.
    link: https://man7.org/linux/man-pages/man8/ipvsadm.8.html
"""

    # Attributes of the modules that change the table.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Computes the operations without sending them; RV(after) is the prediction.
  diff_mode:
    support: full
    description: Shows the affected part of the table before and after, in C(ipvsadm-save -n) format.
  idempotent:
    support: full
    description: A second run with the same arguments changes nothing.
  platform:
    support: full
    platforms: linux
    description: Linux only (IPVS is part of the Linux kernel).
  action_group:
    support: full
    membership:
      - lvs.ipvs.ipvs
    description: Use C(group/lvs.ipvs.ipvs) in C(module_defaults) to set defaults for this module.
notes:
  - RV(commands) lists the equivalent C(ipvsadm) command lines, for review and audit.
  - Runs that change the table are serialized per network namespace with an C(flock) on a file under
    C(/run/lock) (named after the namespace's inode). A second run waits up to 120 seconds, then fails
    without changing anything. The table is read after the lock is taken, so a run never plans (or
    rolls back) from a stale table. The kernel drops the lock when the process ends, however it ends.
  - Every option is validated, and every file that will be written is proven writable, before the
    first change. If a later step fails anyway, the earlier ones are undone and the error says so
    (C(ROLLBACK INCOMPLETE) if the kernel refused part of the undo).
"""

    # Attributes of read-only modules.
    INFO_ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: N/A
    description: Changes nothing, so there is no diff.
  idempotent:
    support: full
    description: Read-only.
  platform:
    support: full
    platforms: linux
    description: Linux only (IPVS is part of the Linux kernel).
  action_group:
    support: full
    membership:
      - lvs.ipvs.ipvs
    description: Use C(group/lvs.ipvs.ipvs) in C(module_defaults) to set defaults for this module.
"""

    # Platform and action group only, for a module that documents its own check and diff modes.
    COMMON_ATTRIBUTES = r"""
attributes:
  platform:
    support: full
    platforms: linux
    description: Linux only (IPVS is part of the Linux kernel).
  action_group:
    support: full
    membership:
      - lvs.ipvs.ipvs
    description: Use C(group/lvs.ipvs.ipvs) in C(module_defaults) to set defaults for this module.
"""
