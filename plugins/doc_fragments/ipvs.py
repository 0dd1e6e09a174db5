# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Options and requirements every IPVS module shares.
    DOCUMENTATION = r"""
options:
  namespace:
    description:
      - Name of the network namespace (as listed by C(ip netns list)) whose IPVS table is managed.
      - Each network namespace has its own IPVS table. Omit to use the namespace Ansible runs in.
      - An absolute path to a namespace file (for example C(/proc/1234/ns/net)) is accepted too.
    type: str
requirements:
  - A kernel with IPVS (C(ip_vs) built in or loadable; it is loaded on first use).
notes:
  - The table is managed over generic netlink (the IPVS family); the C(ipvsadm) tool is not needed.
    Single changes go through pyroute2; whole-table reads and bulk changes through the
    collection's own message encoder, which needs nothing beyond Python.
  - C(commands) lists the equivalent C(ipvsadm) command lines, for review and audit.
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
    description: Computes the operations without sending them; C(after) is the prediction.
  diff_mode:
    support: full
    description: Shows the affected part of the table before and after, in C(ipvsadm-save -n) format.
  idempotent:
    support: full
    description: A second run with the same arguments changes nothing.
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
"""
