"""Lab client of the removal step: live connections held across a change, and a request loop.

Usage: live_probe.py HOST PORT HELD DRAINED STOP_FILE MAX_SECONDS [INTERVAL]. Opens HELD connections to
HOST:PORT and sends each an unfinished HTTP request (the server waits for the end of the headers);
then sends a new request every INTERVAL (0.2) s, each on a new connection, until STOP_FILE exists
(or MAX_SECONDS pass). Once the real server DRAINED ("-": none) has answered and then answered none
for 3 s (the director is draining it: weight 0, its connections kept), the held requests are
finished (else at the end). Prints JSON: the names that answered the held connections, the loop's
counts by name, its failures, the longest time without an answer (outage_s, from the last answer
before to the first after) and the failures after that outage.
Stdlib only; bounded in time and count.
"""
import json
import os
import socket
import sys
import time

host, port, held_n, drained = sys.argv[1], int(sys.argv[2]), min(int(sys.argv[3]), 32), sys.argv[4]
stop_file, max_s = sys.argv[5], min(float(sys.argv[6]), 600.0)
interval = max(float(sys.argv[7]), 0.05) if len(sys.argv) > 7 else 0.2
start = time.monotonic()


def answer(sock):
    data = b""
    while len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().split()[0]


held = []
for _ in range(held_n):
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n")
    held.append(sock)
counts, failures, sent = {}, [], 0
last_drained, finished_at, answers, held_errors = None, None, [], []
answered_at, failed_at = [], []


def finish():
    for sock in held:
        try:
            sock.settimeout(5)
            sock.sendall(b"\r\n")
            answers.append(answer(sock))
        except (OSError, IndexError) as exc:
            held_errors.append(str(exc))
        finally:
            sock.close()


while not os.path.exists(stop_file) and time.monotonic() - start < max_s and sent < 5000:
    sent += 1
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
            name = answer(sock)
        counts[name] = counts.get(name, 0) + 1
        answered_at.append(time.monotonic() - start)
        if name == drained:
            last_drained = time.monotonic()
    except (OSError, IndexError) as exc:
        failures.append("%.1f s: %s" % (time.monotonic() - start, exc))
        failed_at.append(time.monotonic() - start)
    if finished_at is None and last_drained is not None and time.monotonic() - last_drained > 3:
        finish()
        finished_at = round(time.monotonic() - start, 1)
    time.sleep(interval)
if finished_at is None:
    finish()
gaps = [(b - a, b) for a, b in zip(answered_at, answered_at[1:])]
outage, outage_end = max(gaps) if gaps else (0.0, 0.0)
print(json.dumps({"outage_s": round(outage, 2), "failed_after_outage": sum(1 for t in failed_at if t > outage_end),
                  "held": answers, "held_errors": held_errors, "counts": counts, "failures": failures[:20],
                  "failed": len(failures), "requests": sent, "seconds": round(time.monotonic() - start, 1),
                  "stopped": os.path.exists(stop_file), "held_finished_at": finished_at}))
