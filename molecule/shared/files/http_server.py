"""Lab application: an HTTP server answering ``NAME PEER`` (its name and the client's address).

Usage: http_server.py NAME PORT [BIND]. Stdlib only; no name resolution; runs until killed
(lab.hosts starts it as a host service and kills it by PID).
"""
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])
BIND = sys.argv[3] if len(sys.argv) > 3 else "::"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        peer = self.client_address[0]
        if peer.startswith("::ffff:"):
            peer = peer[7:]
        body = ("%s %s\n" % (NAME, peer)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    # Threads: a connection held open (the removal step's live connections) blocks no other.
    daemon_threads = True
    address_family = socket.AF_INET6 if ":" in BIND else socket.AF_INET
    allow_reuse_address = True

    def server_bind(self):
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = BIND, PORT


Server((BIND, PORT), Handler).serve_forever()
