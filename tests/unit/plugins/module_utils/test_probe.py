"""lvs_probe's pure parts: HTTP parsing, the split, weights, director counters."""

from __future__ import annotations

import pytest

from ansible_collections.lvs.ipvs.plugins.module_utils._probe import first_line, parse_http, stats_split, summarize


def test_parse_http_response():
    status, headers, body = parse_http(b"HTTP/1.0 200 OK\r\nX-Real-Server: rs1\r\nContent-Length: 4\r\n\r\nrs1\n")
    assert (status, headers["x-real-server"], body) == (200, "rs1", b"rs1\n")
    with pytest.raises(ValueError, match="not an HTTP response"):
        parse_http(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ValueError, match="incomplete HTTP response"):
        parse_http(b"HTTP/1.0 200 OK\r\n")


def test_first_line_skips_blank_lines():
    assert first_line(b"\n\n  rs2  \nmore") == "rs2"
    assert first_line(b"") == ""


def test_summarize_split_failures_and_weights():
    results = [(True, "rs1", 0.01)] * 3 + [(True, "rs2", 0.02)] * 2 + [(False, "connect timed out", 1.0)] + [(True, "rs9", 0.01)]
    out = summarize(results, {"rs1": 3, "rs2": 2, "rs3": 1})
    assert out["requests"] == 7 and out["succeeded"] == 6 and out["failed_requests"] == 1
    assert out["split"] == {"rs1": 3, "rs2": 2, "rs9": 1}
    assert out["errors"] == {"connect timed out": 1}
    assert out["failures"] == [{"request": 6, "error": "connect timed out"}]
    assert out["sequence"][5] is None and out["sequence"][0] == "rs1"
    assert out["expected"] == {"rs1": 3.0, "rs2": 2.0, "rs3": 1.0}
    assert out["deviation"] == {"rs1": 0.0, "rs2": 0.0, "rs3": -1.0}
    assert out["unexpected"] == ["rs9"]
    assert out["latency"] == {"min": 0.01, "median": 0.01, "max": 1.0}


def test_summarize_lists_at_most_20_failures():
    out = summarize([(False, "refused", 0.0)] * 30)
    assert out["failed_requests"] == 30 and len(out["failures"]) == 20 and out["errors"] == {"refused": 30}


def test_stats_split_counts_new_connections_of_the_matching_service():
    def table(a, b, other):
        return [
            {"address": "192.0.2.10", "port": 80, "real_servers": [
                {"address": "10.0.0.11", "port": 8080, "stats": {"conns": a}},
                {"address": "2001:db8::12", "port": 8080, "stats": {"conns": b}}]},
            {"address": "192.0.2.20", "port": 80, "real_servers": [
                {"address": "10.0.0.11", "port": 8080, "stats": {"conns": other}}]},
        ]

    def match(svc):
        return svc["address"] == "192.0.2.10"

    assert stats_split(table(5, 1, 0), table(35, 1, 99), match) == {"10.0.0.11:8080": 30}
    assert stats_split(table(0, 0, 0), table(3, 2, 0), match) == {"10.0.0.11:8080": 3, "[2001:db8::12]:8080": 2}
