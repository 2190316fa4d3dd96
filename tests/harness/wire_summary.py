#!/usr/bin/env python3
"""An independent reading of a harness capture, to cross-check kwire and to write the README.

  wire_summary.py tests/fixtures/harness/<scenario>.pcap [--events] [--json]

Reads the pcap (classic libpcap, Ethernet link type, as tcpdump writes on `lo`), reassembles each
TCP direction (loopback: in order, no loss; retransmissions are skipped by sequence number),
splits Kafka frames by their length prefix and decodes headers and bodies with kafka-python 3's
protocol classes (generated from Apache Kafka's JSON schemas, every version). The broker ports
come from the `.facts.json` written beside the capture.

Prints per client id the requests per API (and how many got a response), then the facts a
replay must reproduce: Produce acks / records / codecs per partition, committed offsets with
their generation, JoinGroup / SyncGroup generations and assignments, ListOffsets answers.

This is a test oracle, not part of kwire: it buffers whole streams and knows its captures.
"""

import argparse
import collections
import io
import json
import os
import struct
import sys

import kafka.protocol.admin  # noqa: F401  (registers classes)
import kafka.protocol.consumer  # noqa: F401
import kafka.protocol.metadata  # noqa: F401
import kafka.protocol.producer  # noqa: F401
from kafka.protocol.api_message import ApiMessage

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
# API keys kafka-python 3 has no classes for (their bodies are not decoded here)
OTHER_APIS = {71: "GetTelemetrySubscriptions", 72: "PushTelemetry"}


# ---------------------------------------------------------------- pcap + TCP
def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: link type {linktype}, only Ethernet (1) is handled here")
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(e + "IIII", data[pos:pos + 16])
        pos += 16
        yield sec + frac / (1e9 if nano else 1e6), data[pos:pos + incl]
        pos += incl


def tcp_segments(path):
    for ts, frame in read_pcap(path):
        eth_type = struct.unpack(">H", frame[12:14])[0]
        off = 14
        if eth_type == 0x0800:
            ihl = (frame[off] & 0x0F) * 4
            if frame[off + 9] != 6:
                continue
            src, dst = frame[off + 12:off + 16], frame[off + 16:off + 20]
            total = struct.unpack(">H", frame[off + 2:off + 4])[0]
            ip_end = off + total
            off += ihl
        elif eth_type == 0x86DD:
            if frame[off + 6] != 6:
                continue
            plen = struct.unpack(">H", frame[off + 4:off + 6])[0]
            src, dst = frame[off + 8:off + 24], frame[off + 24:off + 40]
            ip_end = off + 40 + plen
            off += 40
        else:
            continue
        sport, dport, seq = struct.unpack(">HHI", frame[off:off + 8])
        flags = frame[off + 13]
        doff = (frame[off + 12] >> 4) * 4
        payload = frame[off + doff:ip_end]
        yield ts, (bytes(src), sport), (bytes(dst), dport), seq, flags, payload


def streams(path, broker_ports):
    """{(client, broker): {"up": [(ts, bytes)], "down": [(ts, bytes)]}} with in-order payloads."""
    conns = collections.OrderedDict()
    next_seq = {}
    for ts, src, dst, seq, flags, payload in tcp_segments(path):
        if dst[1] in broker_ports:
            key, way = (src, dst), "up"
        elif src[1] in broker_ports:
            key, way = (dst, src), "down"
        else:
            continue
        c = conns.setdefault(key, {"up": [], "down": []})
        d = (key, way)
        if flags & 0x02:  # SYN
            next_seq[d] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        if d not in next_seq:
            next_seq[d] = seq  # mid-stream start
        exp = next_seq[d]
        delta = (seq - exp) & 0xFFFFFFFF
        if delta >= 0x80000000:  # retransmission of bytes already seen
            skip = (exp - seq) & 0xFFFFFFFF
            if skip >= len(payload):
                continue
            payload = payload[skip:]
        elif delta:
            raise SystemExit(f"gap of {delta} bytes in {d}: this oracle expects loss-free loopback captures")
        c[way].append((ts, payload))
        next_seq[d] = (exp + len(payload)) & 0xFFFFFFFF
    return conns


def frames(chunks):
    """Kafka frames (ts of the segment that completed them, bytes without the length prefix)."""
    buf = b""
    for ts, data in chunks:
        buf += data
        while len(buf) >= 4:
            n = struct.unpack(">i", buf[:4])[0]
            if len(buf) < 4 + n:
                break
            yield ts, buf[4:4 + n]
            buf = buf[4 + n:]


# ---------------------------------------------------------------- Kafka decoding
def classes():
    req, resp = {}, {}
    todo = list(ApiMessage.__subclasses__())
    while todo:
        c = todo.pop()
        todo.extend(c.__subclasses__())
        try:
            if getattr(c, "_class_version", None) is not None:
                continue
            (req if c.is_request() else resp)[c.API_KEY] = c
        except Exception:
            continue
    return req, resp


REQ, RESP = classes()


def uvarint(b, pos):
    shift = value = 0
    while True:
        x = b[pos]
        pos += 1
        value |= (x & 0x7F) << shift
        if not x & 0x80:
            return value, pos
        shift += 7


def skip_tags(b, pos):
    n, pos = uvarint(b, pos)
    for _ in range(n):
        _tag, pos = uvarint(b, pos)
        size, pos = uvarint(b, pos)
        pos += size
    return pos


def request_header(b):
    key, ver, corr = struct.unpack(">hhi", b[:8])
    n = struct.unpack(">h", b[8:10])[0]
    client_id = b[10:10 + n].decode() if n >= 0 else None
    pos = 10 + max(n, 0)
    cls = REQ.get(key)
    flexible = cls is not None and cls.flexible_version_q(ver)
    if flexible and key != 18 or (key == 18 and ver >= 3):
        pos = skip_tags(b, pos)
    return key, ver, corr, client_id, pos


def decode_body(cls, ver, body):
    if cls is None:
        return None
    try:
        return cls[None].decode(body, version=ver)
    except Exception as e:  # report, keep going
        return {"decode_error": repr(e)}


def batches(records):
    """(base_offset, record_count, codec) of each v2 record batch in a records field."""
    out = []
    if not records:
        return out
    b = bytes(records)
    pos = 0
    while pos + 61 <= len(b):
        base, length = struct.unpack(">qi", b[pos:pos + 12])
        magic = b[pos + 16]
        if magic != 2:
            out.append((base, None, f"magic{magic}"))
            break
        attrs = struct.unpack(">h", b[pos + 21:pos + 23])[0]
        count = struct.unpack(">i", b[pos + 57:pos + 61])[0]
        out.append((base, count, CODECS.get(attrs & 7, attrs & 7)))
        pos += 12 + length
    return out


def g(obj, *names, default=None):
    for n in names:
        if obj is None:
            return default
        obj = getattr(obj, n, None)
    return default if obj is None else obj


def consumer_assignment(raw):
    """ConsumerProtocolAssignment (version, [topic, [partition]], user data) -> {topic: [p]}."""
    if not raw:
        return {}
    b = bytes(raw)
    pos = 2
    n = struct.unpack(">i", b[pos:pos + 4])[0]
    pos += 4
    out = {}
    for _ in range(n):
        ln = struct.unpack(">h", b[pos:pos + 2])[0]
        topic = b[pos + 2:pos + 2 + ln].decode()
        pos += 2 + ln
        k = struct.unpack(">i", b[pos:pos + 4])[0]
        pos += 4
        out[topic] = list(struct.unpack(f">{k}i", b[pos:pos + 4 * k]))
        pos += 4 * k
    return out


# ---------------------------------------------------------------- the summary
def summarize(pcap):
    facts_file = pcap[:-5] + ".facts.json" if pcap.endswith(".pcap") else pcap + ".facts.json"
    facts = json.load(open(facts_file))
    ports = set(facts["broker"]["ports"])
    t0 = None
    s = {"requests": collections.defaultdict(collections.Counter),
         "answered": collections.defaultdict(collections.Counter),
         "versions": collections.defaultdict(lambda: collections.defaultdict(set)),
         "connections": collections.Counter(), "events": [], "by_key": {}}
    for (client, broker), c in streams(pcap, ports).items():
        pending = {}
        cid_of_conn = None
        ups = list(frames(c["up"]))
        for ts, f in ups:
            key, ver, corr, cid, pos = request_header(f)
            t0 = ts if t0 is None else min(t0, ts)
            cid_of_conn = cid_of_conn or cid
            pending[corr] = (key, ver, cid, ts, decode_body(REQ.get(key), ver, f[pos:]))
        if cid_of_conn:
            s["connections"][cid_of_conn] += 1
        answered = {}
        for ts, f in frames(c["down"]):
            corr = struct.unpack(">i", f[:4])[0]
            if corr not in pending:
                continue
            key, ver, cid, _, _ = pending[corr]
            cls = RESP.get(key)
            pos = 4
            if cls is not None and cls.flexible_version_q(ver) and key != 18:
                pos = skip_tags(f, pos)
            answered[corr] = (ts, decode_body(cls, ver, f[pos:]))
        for corr, (key, ver, cid, ts, req) in pending.items():
            api = REQ[key].__name__.replace("Request", "") if key in REQ else OTHER_APIS.get(key, str(key))
            s["requests"][cid][api] += 1
            s["versions"][cid][api].add(ver)
            s["by_key"].setdefault(cid, {}).setdefault(key, [0, 0])[0] += 1
            resp = answered.get(corr)
            if resp:
                s["answered"][cid][api] += 1
                s["by_key"][cid][key][1] += 1
            ev = event(api, req, resp[1] if resp else None)
            if ev is not None:
                s["events"].append((ts, cid, broker[1], api, ev))
    s["events"].sort(key=lambda e: e[0])
    s["t0"] = t0
    return facts, s


def event(api, req, resp):
    """The interesting content of one exchange, or None."""
    if api not in ("Produce", "OffsetCommit", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup",
                   "ListOffsets", "Metadata", "Fetch"):
        return None
    if isinstance(req, dict) or isinstance(resp, dict):
        return {"decode_error": (req if isinstance(req, dict) else resp)["decode_error"]}
    if api == "Produce":
        parts = {}
        for t in g(req, "topic_data", default=[]):
            for p in g(t, "partition_data", default=[]):
                parts[f"{g(t, 'name')}/{g(p, 'index')}"] = batches(g(p, "records"))
        ev = {"acks": g(req, "acks"), "batches": parts}
        if resp is not None:
            ev["base_offsets"] = {f"{g(t, 'name')}/{g(p, 'index')}": (g(p, "base_offset"), g(p, "error_code"))
                                  for t in g(resp, "responses", default=[]) for p in g(t, "partition_responses", default=[])}
        else:
            ev["response"] = None
        return ev
    if api == "OffsetCommit":
        ev = {"group": g(req, "group_id"), "generation": g(req, "generation_id_or_member_epoch", default=g(req, "generation_id")),
              "member": g(req, "member_id"),
              "offsets": {f"{g(t, 'name')}/{g(p, 'partition_index')}": g(p, "committed_offset")
                          for t in g(req, "topics", default=[]) for p in g(t, "partitions", default=[])}}
        if resp is not None:
            ev["errors"] = sorted({g(p, "error_code") for t in g(resp, "topics", default=[]) for p in g(t, "partitions", default=[])})
        return ev
    if api == "JoinGroup" and resp is not None:
        return {"group": g(req, "group_id"), "error": g(resp, "error_code"), "generation": g(resp, "generation_id"),
                "member": g(resp, "member_id"), "leader": g(resp, "leader"), "protocol": g(resp, "protocol_name"),
                "members": len(g(resp, "members", default=[]))}
    if api == "SyncGroup" and resp is not None:
        return {"group": g(req, "group_id"), "generation": g(req, "generation_id"), "member": g(req, "member_id"),
                "error": g(resp, "error_code"), "assignment": consumer_assignment(g(resp, "assignment"))}
    if api in ("Heartbeat", "LeaveGroup") and resp is not None:
        return {"group": g(req, "group_id"), "generation": g(req, "generation_id"), "error": g(resp, "error_code")}
    if api == "ListOffsets":
        ev = {"asked": {f"{g(t, 'name')}/{g(p, 'partition_index')}": g(p, "timestamp")
                        for t in g(req, "topics", default=[]) for p in g(t, "partitions", default=[])}}
        if resp is not None:
            ev["answer"] = {f"{g(t, 'name')}/{g(p, 'partition_index')}": (g(p, "offset"), g(p, "error_code"))
                            for t in g(resp, "topics", default=[]) for p in g(t, "partitions", default=[])}
        return ev
    if api == "Metadata":
        topics = g(req, "topics")
        ev = {"asked": "all" if topics is None else sorted(g(t, "name") or "?" for t in topics)}
        if resp is not None:
            ev["topics"] = sorted(g(t, "name") for t in g(resp, "topics", default=[]))
        return ev
    if api == "Fetch" and resp is not None:
        parts = {}
        for t in g(resp, "responses", default=[]):
            for p in g(t, "partitions", default=[]):
                bs = batches(g(p, "records"))
                if bs:
                    parts[f"{g(t, 'topic') or g(t, 'topic_id')}/{g(p, 'partition_index')}"] = {
                        "high_watermark": g(p, "high_watermark"), "batches": bs}
        return {"records": parts} if parts else None
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("pcap")
    ap.add_argument("--events", action="store_true", help="also list the decoded exchanges in time order")
    ap.add_argument("--json", action="store_true",
                    help='only {"requests": {client_id: {api_key: [requests, answered]}}, "connections": {...}}')
    a = ap.parse_args()
    facts, s = summarize(a.pcap)
    if a.json:
        print(json.dumps({"requests": s["by_key"], "connections": s["connections"]}, sort_keys=True))
        return
    print(f"== {os.path.basename(a.pcap)}  ({facts['broker']['kind']}, ports {facts['broker']['ports']})")
    for cid in sorted(s["requests"]):
        print(f"  {cid}  ({s['connections'][cid]} connections)")
        for api, n in sorted(s["requests"][cid].items()):
            vs = ",".join(str(v) for v in sorted(s["versions"][cid][api]))
            print(f"    {api:<26} {n:>3} requests  {s['answered'][cid][api]:>3} answered   v{vs}")
    if a.events:
        for ts, cid, port, api, ev in s["events"]:
            print(f"  {ts - s['t0']:8.3f} {cid:<20} :{port:<5} {api:<14} {json.dumps(ev, default=str)}")


if __name__ == "__main__":
    main()
