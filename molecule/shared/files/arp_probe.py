"""Send ARP requests for an address and list every MAC that answers (raw AF_PACKET socket).

Usage: arp_probe.py IFACE TARGET_IPV4 [SECONDS] [COUNT]. Sends COUNT (default 3) requests from
the interface's own MAC and first IPv4 address, listens for SECONDS (default 1.5, at most 10)
and prints JSON: {"replies": {MAC: n}, "requests": COUNT}.
"""
import fcntl
import json
import select
import socket
import struct
import sys
import time

iface, target = sys.argv[1], sys.argv[2]
seconds = min(float(sys.argv[3]) if len(sys.argv) > 3 else 1.5, 10.0)
count = min(int(sys.argv[4]) if len(sys.argv) > 4 else 3, 10)
ETH_P_ARP = 0x0806

probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ifreq = struct.pack("256s", iface.encode()[:15])
mac = fcntl.ioctl(probe.fileno(), 0x8927, ifreq)[18:24]  # SIOCGIFHWADDR
src_ip = fcntl.ioctl(probe.fileno(), 0x8915, ifreq)[20:24]  # SIOCGIFADDR
probe.close()

sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
sock.bind((iface, ETH_P_ARP))
tip = socket.inet_aton(target)
request = (b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
           + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + src_ip + b"\x00" * 6 + tip)
replies = {}
deadline = time.monotonic() + seconds
sent = 0
while time.monotonic() < deadline:
    if sent < count:
        sock.send(request)
        sent += 1
    ready, _, _ = select.select([sock], [], [], 0.2)
    if not ready:
        continue
    frame = sock.recv(2048)
    arp = frame[14:42]
    if len(arp) < 28:
        continue
    op = struct.unpack("!H", arp[6:8])[0]
    if op == 2 and arp[14:18] == tip:
        sender = ":".join("%02x" % b for b in arp[8:14])
        replies[sender] = replies.get(sender, 0) + 1
print(json.dumps({"replies": replies, "requests": sent}))
