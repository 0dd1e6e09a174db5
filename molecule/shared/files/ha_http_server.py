"""Lab application of the HA topology: an HTTP/1.0 server answering its NAME (one request per connection).

Usage: ha_http_server.py NAME PORT. While the file /tmp/lvs-down exists the listening socket is
closed (connections are refused, so the directors' health checks fail) until it is removed; while
/tmp/lvs-maintenance exists it answers 503. Stdlib only; prints "ready" once listening; runs until
killed (a lab host's service, or a lab machine's systemd unit).
"""
import os
import select
import socket
import sys
import threading
name, port = sys.argv[1], int(sys.argv[2])
DOWN, MAINTENANCE = "/tmp/lvs-down", "/tmp/lvs-maintenance"


def answer(conn):
    with conn:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        busy = os.path.exists(MAINTENANCE)
        body = ("maintenance " + name if busy else name).encode() + b"\n"
        status = b"503 Service Unavailable" if busy else b"200 OK"
        conn.sendall(b"HTTP/1.0 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)


def listen():
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.bind(("::", port))
    srv.listen(128)
    return srv


srv = None if os.path.exists(DOWN) else listen()
print("ready", flush=True)
while True:
    if os.path.exists(DOWN):
        if srv is not None:
            srv.close()
            srv = None
    elif srv is None:
        srv = listen()
    if srv is None:
        select.select([], [], [], 0.2)
        continue
    if select.select([srv], [], [], 0.2)[0]:
        try:
            conn, _ = srv.accept()
        except OSError:
            continue
        threading.Thread(target=answer, args=(conn,), daemon=True).start()
