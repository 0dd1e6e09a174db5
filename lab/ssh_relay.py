"""ssh ProxyCommand into a lab topology's private network namespace: ``ip netns exec NS python3 ssh_relay.py HOST PORT``.

The lab machines' management switch is bridged to a tap that exists only inside that namespace,
so the controller (Ansible on the host) reaches them through this relay: stdin/stdout <-> TCP.
Standard library only; ends when either side closes.
"""
from __future__ import annotations

import os
import selectors
import socket
import sys


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as exc:
        print(f"ssh_relay: cannot connect to {host}:{port}: {exc}", file=sys.stderr)
        return 255
    sock.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ)
    open_in = True
    while True:
        for key, _ev in sel.select():
            if key.fileobj == 0:
                data = os.read(0, 1 << 16)
                if not data:
                    sel.unregister(0)
                    open_in = False
                    sock.shutdown(socket.SHUT_WR)
                    continue
                sock.sendall(data)
            else:
                data = sock.recv(1 << 16)
                if not data:
                    return 0
                view = memoryview(data)
                while view:
                    view = view[os.write(1, view):]
        if not open_in and not sel.get_map():
            return 0


if __name__ == "__main__":
    sys.exit(main())
