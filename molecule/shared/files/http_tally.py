"""N HTTP GETs to HOST:PORT, each on a new connection; prints JSON counts of the answering names.

Usage: http_tally.py HOST PORT COUNT [NAME=WEIGHT,...]. With weights, also the expected count of
each name (COUNT * weight / total) and ``worst``, the largest |count - expected|. Bounded:
COUNT <= 1000 requests, 2 s timeout each, the whole run stops after 60 s.
"""
import json
import socket
import sys
import time

host, port, count = sys.argv[1], int(sys.argv[2]), min(int(sys.argv[3]), 1000)
weights = dict((k, int(v)) for k, v in (p.split("=") for p in sys.argv[4].split(","))) if len(sys.argv) > 4 else {}
timeout = 2.0
counts, errors, peers = {}, [], set()
start = time.monotonic()
for _ in range(count):
    if time.monotonic() - start > 60:
        errors.append("stopped after 60 s")
        break
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        body = data.split(b"\r\n\r\n", 1)[1].decode().split()
        counts[body[0]] = counts.get(body[0], 0) + 1
        peers.add(body[1] if len(body) > 1 else "")
    except (OSError, IndexError) as exc:
        errors.append(str(exc))
total = sum(weights.values())
expected = {k: round(count * w / total, 1) for k, w in weights.items()} if total else {}
worst = max([abs(counts.get(k, 0) - e) for k, e in expected.items()] + [0])
summary = ", ".join("%s %d (weight %d, expected %s)" % (k, counts.get(k, 0), weights[k], expected[k]) for k in sorted(weights))
print(json.dumps({"summary": summary or json.dumps(counts), "counts": counts, "errors": errors, "peers": sorted(peers), "expected": expected, "worst": worst,
                  "seconds": round(time.monotonic() - start, 2)}))
