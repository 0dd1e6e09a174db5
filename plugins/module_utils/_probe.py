# -*- coding: utf-8 -*-
# Copyright: lvs.ipvs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traffic probe behind lvs.ipvs.lvs_probe: N requests to a virtual service, who answered.

PRIVATE to the lvs.ipvs collection: no compatibility promise for anything here.

Standard library only (the director-stats mode reads the IPVS table through the collection's
netlink adapter, imported by the module). ``summarize`` and ``parse_http`` are pure.
"""

from __future__ import annotations

import os
import socket
import time
import typing as t

from ansible_collections.lvs.ipvs.plugins.module_utils import _netns
from ansible_collections.lvs.ipvs.plugins.module_utils._netns import netns_path

MAX_RESPONSE = 65536
MAX_FAILURES_LISTED = 20


class ProbeError(Exception):
    """The probe cannot run (bad namespace, bad address); the message names the option."""


def enter_namespace(name: str) -> int:
    """Move this process into network namespace ``name``; returns an fd of the namespace it left."""
    try:
        path = netns_path(name)
    except ValueError as exc:
        raise ProbeError("namespace: %s" % exc) from None
    try:
        old = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ProbeError("namespace: network namespace %r not found (%s)" % (name, exc.strerror)) from None
    try:
        setns(fd)
    finally:
        os.close(fd)
    return old


def setns(fd: int) -> None:
    try:
        _netns.setns(fd)
    except OSError as exc:
        raise ProbeError("namespace: cannot enter the network namespace: %s" % exc.strerror) from None


def parse_http(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of an HTTP/1.x response; ValueError if malformed."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    if not sep:
        raise ValueError("incomplete HTTP response (%d bytes)" % len(raw))
    lines = head.decode("iso-8859-1").splitlines()
    parts = lines[0].split(None, 2) if lines else []
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("not an HTTP response: %r" % (lines[0][:80] if lines else ""))
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, body


def first_line(data: bytes) -> str:
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _connect(family: int, address: str, port: int, timeout: float, source: str | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if source:
        sock.bind((source, 0))
    sock.connect((address, port))
    return sock


def _read_all(sock: socket.socket, deadline: float, limit: int = MAX_RESPONSE) -> bytes:
    chunks, size = [], 0
    while size < limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out reading the response")
        sock.settimeout(remaining)
        chunk = sock.recv(min(16384, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < 4096:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def request(params: t.Mapping[str, t.Any]) -> tuple[bool, str]:
    """One request; (True, identity) or (False, error text)."""
    address, port, timeout = params["address"], params["port"], params["timeout"]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(family, address, port, timeout, params.get("source"))
    except socket.timeout:
        return False, "connect timed out"
    except OSError as exc:
        return False, "connect: %s" % (exc.strerror or exc)
    try:
        if params["protocol"] == "http":
            host = params.get("host_header") or ("[%s]" % address if family == socket.AF_INET6 else address)
            req = "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: lvs.ipvs.lvs_probe\r\nConnection: close\r\n\r\n" % (
                params["path"], host)
            sock.sendall(req.encode("ascii"))
            raw = _read_all(sock, deadline)
            try:
                status, headers, body = parse_http(raw)
            except ValueError as exc:
                return False, str(exc)
            if params["expect_status"] and status not in params["expect_status"]:
                return False, "HTTP status %d" % status
            if params["identify"] == "header":
                name = params["identify_header"].lower()
                if name not in headers:
                    return False, "no %s header in the response" % params["identify_header"]
                return True, headers[name][:200]
            if params["identify"] == "status":
                return True, str(status)
            return True, first_line(body)
        # tcp
        if params.get("send"):
            sock.sendall(params["send"].encode("utf-8"))
        if params["identify"] == "connect":
            return True, "%s:%d" % (address, port)
        line = _read_line(sock, deadline)
        if not line:
            return False, "no data received"
        return True, first_line(line)
    except socket.timeout:
        return False, "timed out"
    except OSError as exc:
        return False, "%s" % (exc.strerror or exc)
    finally:
        sock.close()


def run(params: t.Mapping[str, t.Any], clock: t.Callable[[], float] = time.monotonic,
        sleep: t.Callable[[float], None] = time.sleep) -> list[tuple[bool, str, float]]:
    """``count`` requests, ``interval`` apart; (ok, identity-or-error, seconds) for each."""
    results = []
    for n in range(params["count"]):
        if n and params["interval"]:
            sleep(params["interval"])
        started = clock()
        ok, text = request(params)
        results.append((ok, text, clock() - started))
    return results


def summarize(results: t.Sequence[tuple[bool, str, float]], weights: t.Mapping[str, int] | None = None) -> dict[str, t.Any]:
    """Counts per identity, failures, and (with ``weights``) the share each should have had."""
    split: dict[str, int] = {}
    errors: dict[str, int] = {}
    failures = []
    sequence = []
    for n, (ok, text, _seconds) in enumerate(results, 1):
        if ok:
            split[text] = split.get(text, 0) + 1
            sequence.append(text)
        else:
            errors[text] = errors.get(text, 0) + 1
            sequence.append(None)
            if len(failures) < MAX_FAILURES_LISTED:
                failures.append({"request": n, "error": text})
    total = len(results)
    ok_count = sum(split.values())
    times = sorted(r[2] for r in results)
    out: dict[str, t.Any] = {
        "requests": total,
        "succeeded": ok_count,
        "failed_requests": total - ok_count,  # not "failed": Ansible reads that key as the task's failure
        "split": dict(sorted(split.items())),
        "errors": dict(sorted(errors.items())),
        "failures": failures,
        "sequence": sequence,
        "latency": {
            "min": round(times[0], 6) if times else None,
            "median": round(times[len(times) // 2], 6) if times else None,
            "max": round(times[-1], 6) if times else None,
        },
    }
    if weights:
        total_weight = sum(w for w in weights.values() if w > 0)
        expected = {}
        for name, weight in sorted(weights.items()):
            expected[name] = round(ok_count * weight / total_weight, 3) if total_weight else 0.0
        out["expected"] = expected
        out["deviation"] = {name: split.get(name, 0) - value for name, value in expected.items()}
        out["unexpected"] = sorted(set(split) - set(weights))
    return out


def stats_split(before: t.Sequence[t.Mapping[str, t.Any]], after: t.Sequence[t.Mapping[str, t.Any]],
                service: t.Callable[[t.Mapping[str, t.Any]], bool]) -> dict[str, int]:
    """New connections per real server ('address:port') between two stats dumps of the matching services."""
    def conns(table: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for svc in table:
            if not service(svc):
                continue
            for rs in svc.get("real_servers") or []:
                host = "[%s]" % rs["address"] if ":" in rs["address"] else rs["address"]
                key = "%s:%d" % (host, rs["port"])
                out[key] = out.get(key, 0) + int((rs.get("stats") or {}).get("conns", 0))
        return out

    old, new = conns(before), conns(after)
    return {key: new[key] - old.get(key, 0) for key in sorted(new) if new[key] - old.get(key, 0) > 0}
