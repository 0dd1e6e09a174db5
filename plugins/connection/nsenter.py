# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nsenter
short_description: Run tasks inside Linux namespaces of the controller's machine
version_added: 1.0.0
description:
  - Runs every command of a task with C(nsenter) in a network namespace and, optionally, a mount
    namespace of the machine Ansible runs on. Each namespace then acts as a separate host with its
    own interfaces, addresses, IPVS table, firewall and (with a mount namespace) its own C(/etc).
  - Meant for test labs and for appliances that run one load-balancer instance per namespace. The
    collection's real-kernel lab uses it to drive its roles against namespace "hosts"
    (see C(molecule/README.md) in the collection).
  - Needs root on the controller and the C(nsenter) tool of util-linux. Files are copied by
    streaming them through C(cat) inside the namespaces, so they land in the host's own view of
    the file system.
author:
  - lvs.ipvs maintainers (@lvs-ipvs)
options:
  netns:
    description:
      - The network namespace to enter; a name as listed by C(ip netns list) (its file
        C(/run/netns/NAME)) or an absolute path such as C(/proc/1234/ns/net).
      - Defaults to the inventory host name.
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_nsenter_netns
  mount_namespace:
    description:
      - Absolute path of a mount namespace to enter as well (a bind-mounted namespace file, for
        example made with C(unshare --mount=PATH)). Omit to keep the controller's file system view.
    type: str
    vars:
      - name: ansible_nsenter_mount
  nsenter_path:
    description: The nsenter executable.
    type: str
    default: nsenter
    vars:
      - name: ansible_nsenter_path
extends_documentation_fragment:
  - ansible.builtin.connection_pipelining
notes:
  - Privilege escalation (C(become)) is not supported; tasks run as the controller's user, which
    must be root to enter namespaces.
  - Enable pipelining (C(ansible_pipelining=true)) to run modules without temporary files.
"""

EXAMPLES = r"""
# inventory.yml: two "hosts" that are network namespaces of this machine
all:
  vars:
    ansible_connection: lvs.ipvs.nsenter
    ansible_pipelining: true
  hosts:
    lb1: {}                                   # enters /run/netns/lb1
    lb2:
      ansible_nsenter_netns: /run/netns/blue  # another namespace name
      ansible_nsenter_mount: /run/lab/lb2/mnt # and a private /etc in this mount namespace
"""

import os
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

# A copy streamed through cat must not hang forever on a stuck namespace.
_TRANSFER_TIMEOUT = 600


class Connection(ConnectionBase):
    """Run commands with nsenter in a network (and optionally mount) namespace."""

    transport = "lvs.ipvs.nsenter"
    has_pipelining = True
    has_tty = False
    default_user = "root"

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._nsenter_argv = None

    def _prefix(self):
        """The nsenter command line that enters the configured namespaces."""
        if self._nsenter_argv is None:
            netns = self.get_option("netns")
            if not netns:
                raise AnsibleConnectionFailure("lvs.ipvs.nsenter: no network namespace given (netns)")
            path = netns if netns.startswith("/") else os.path.join("/run/netns", netns)
            if not os.path.exists(path):
                raise AnsibleConnectionFailure("lvs.ipvs.nsenter: network namespace %s not found (%s)" % (netns, path))
            exe = shutil.which(self.get_option("nsenter_path")) or self.get_option("nsenter_path")
            argv = [exe, "--net=%s" % path]
            mount = self.get_option("mount_namespace")
            if mount:
                if not os.path.exists(mount):
                    raise AnsibleConnectionFailure("lvs.ipvs.nsenter: mount namespace %s not found" % mount)
                argv.append("--mount=%s" % mount)
            self._nsenter_argv = argv + ["--"]
        return self._nsenter_argv

    def _connect(self):
        if not self._connected:
            self._prefix()
            display.vvv("ESTABLISH NSENTER %s" % " ".join(self._nsenter_argv[1:-1]), host=self._play_context.remote_addr)
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = self._prefix() + ["/bin/sh", "-c", cmd]
        display.vvv("EXEC %s" % " ".join(argv), host=self._play_context.remote_addr)
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def _stream(self, argv, stdin=None, stdout=None):
        proc = subprocess.Popen(self._prefix() + argv, stdin=stdin or subprocess.DEVNULL,
                                stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stderr = proc.communicate(timeout=_TRANSFER_TIMEOUT)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AnsibleError("lvs.ipvs.nsenter: %s timed out" % " ".join(argv))
        return proc.returncode, stderr

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % in_path)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as src:
            rc, stderr = self._stream(["/bin/sh", "-c", 'cat > "$1"', "sh", out_path], stdin=src)
        if rc != 0:
            raise AnsibleError("failed to transfer %s to %s: %s" % (in_path, out_path, to_native(stderr)))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._play_context.remote_addr)
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as dst:
            rc, stderr = self._stream(["/bin/cat", in_path], stdout=dst)
        if rc != 0:
            raise AnsibleError("failed to fetch %s to %s: %s" % (in_path, out_path, to_native(stderr)))

    def close(self):
        self._connected = False
