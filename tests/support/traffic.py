"""Small traffic programs for lab hosts: a TCP server that holds connections, a held client, a load loop.

Each is a standalone Python program (run with ``host.spawn([sys.executable, "-c", PROGRAM, ...])``);
every loop is bounded in count and time.
"""

from __future__ import annotations

# argv: port. Accepts connections, answers every line with "<hostname> <line>", until killed.
HOLD_SERVER = r'''
import socket, sys, threading
name = socket.gethostname() if len(sys.argv) < 3 else sys.argv[2]
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", int(sys.argv[1])))
srv.listen(64)
print("ready", flush=True)

def serve(conn):
    with conn:
        for line in conn.makefile("rb"):
            conn.sendall(("%s %s" % (name, line.decode().strip())).encode() + b"\n")

while True:
    conn, _addr = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''

# argv: host port seconds. Opens one connection, says hello, prints who answered, holds it open
# (pinging every second) for at most `seconds`, then resets it (RST: IPVS forgets a reset
# connection in 10 s, a cleanly closed one lingers 2 min in TIME_WAIT) and exits.
HELD_CLIENT = r'''
import socket, struct, sys, time
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
reader = sock.makefile("rb")
sock.sendall(b"hello\n")
print(reader.readline().decode().split()[0], flush=True)
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    time.sleep(1)
    sock.sendall(b"ping\n")
    if not reader.readline():
        print("closed by peer", flush=True)
        break
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.close()
print("reset", flush=True)
'''

# argv: host port max_count seconds. Sequential HTTP/1.0 GETs, each on a new connection, for
# `seconds` (or `max_count` requests); prints one line of JSON: requests, failures (with
# reasons), answers per body, and where the answering body changed as (index, body).
LOAD = r'''
import json, socket, sys, time
host, port, count, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
start = time.monotonic()
done, failures, split, changes, last = 0, [], {}, [], None
print("started", flush=True)
for i in range(count):
    if time.monotonic() - start > limit:
        break
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _sep, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200"):
            raise ValueError("bad answer %r" % data[:60])
        body = body.decode().strip()
        split[body] = split.get(body, 0) + 1
        if body != last:
            changes.append((i, body))
            last = body
    except Exception as exc:
        failures.append("request %d: %s" % (i, exc))
    done += 1
print(json.dumps({"requests": done, "failures": failures, "split": split, "changes": changes[-50:],
                  "seconds": round(time.monotonic() - start, 2)}), flush=True)
'''
