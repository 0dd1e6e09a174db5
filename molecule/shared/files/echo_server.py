"""Lab application of the HA topology: a line echo service for long-lived connections.

Usage: echo_server.py NAME PORT. Answers every line with "NAME LINE". Stdlib only; prints "ready"
once listening; runs until killed.
"""
import socket
import sys
import threading
name, port = sys.argv[1], int(sys.argv[2])


def serve(conn):
    with conn:
        buf = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(name.encode() + b" " + line + b"\n")


srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", port))
srv.listen(64)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
