"""Production-like load for `cargo xtask bench`: nine real librdkafka clients (confluent-kafka), each in
its own process, against a 3-broker mock cluster, until told to stop.

Clients (client.id in brackets):
- four producers, each paced to its own rate:
  [kw-bench-orders]  acks=all, idempotent, linger 20 ms, no compression, ~1 kB JSON-like records, 3 MB/s, keyed
  [kw-bench-clicks]  acks=1, lz4, linger 10 ms, ~600 B records, 1.5 MB/s
  [kw-bench-audit]   acks=all, zstd, batch.size 256 KiB, linger 50 ms, ~2 kB records, 3 MB/s
  [kw-bench-metrics] acks=1, linger 0 (unbatched), 100-400 B records, 0.7 MB/s
- a consumer group kw-bench-group of three members [kw-bench-consumer-1..3] (range assignor, auto commit
  off, an asynchronous commit every second) subscribed to the four topics, joining at 0, 4 and 10 s;
- [kw-bench-lag-monitor]: ListOffsets (latest, every partition) every 250 ms and OffsetFetch of the group
  every second, like a lag exporter;
- [kw-bench-metadata]: Metadata (all topics) every 500 ms, like a dashboard or a sidecar.

The topics (orders 12 partitions, clicks 12, audit 6, metrics 6) must exist: `--topics` prints them for
the caller to create (the mock has no CreateTopics). It runs until a line arrives on stdin (or EOF, or --seconds), then stops every client cleanly (consumers
close, producers flush) and prints one FACT line per client and one for the whole load. Records are
JSON-like with random fields, so lz4 and zstd compress them about as much as real payloads.
"""

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import sys
import threading
import time

from harness import Deadline, fact, log

TOPICS = {"orders": 12, "clicks": 12, "audit": 6, "metrics": 6}
GROUP = "kw-bench-group"

PRODUCERS = [
    # client id, topic, keyed (else librdkafka's sticky partitioner), config, mean record bytes,
    # spread, MB/s
    ("kw-bench-orders", "orders", True,
     {"acks": "all", "enable.idempotence": True, "linger.ms": 20}, 1000, 200, 3.0),
    ("kw-bench-clicks", "clicks", False,
     {"acks": "1", "enable.idempotence": False, "compression.type": "lz4", "linger.ms": 10},
     600, 150, 1.5),
    ("kw-bench-audit", "audit", True,
     {"acks": "all", "enable.idempotence": False, "compression.type": "zstd",
      "batch.size": 262144, "linger.ms": 50}, 2000, 500, 3.0),
    ("kw-bench-metrics", "metrics", False,
     {"acks": "1", "enable.idempotence": False, "linger.ms": 0}, 250, 150, 0.7),
]
CONSUMER_JOIN_S = [0, 4, 10]


def record(rng, size):
    """A JSON-like record of about `size` bytes: fixed keys, random numbers and ids, some text."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    base = {
        "id": rng.getrandbits(48),
        "ts": 1767225600000 + rng.randrange(10**8),
        "user": f"u{rng.randrange(100000)}",
        "region": rng.choice(["eu-west-1", "us-east-1", "ap-south-1"]),
        "amount": round(rng.random() * 1000, 2),
    }
    s = json.dumps(base)
    pad = max(0, size - len(s) - 12)
    text = " ".join(rng.choice(words) for _ in range(pad // 6 + 1))[: pad // 2]
    noise = "%x" % rng.getrandbits(max(4, (pad - len(text)) * 4))
    base["note"] = (text + noise)[:pad]
    return json.dumps(base).encode()


def producer(cid, topic, keyed, conf, mean, spread, mbps, bootstrap, stop, out):
    from confluent_kafka import Producer
    rng = random.Random(cid)
    pool = [record(rng, rng.randint(mean - spread, mean + spread)) for _ in range(1500)]
    p = Producer({"bootstrap.servers": bootstrap, "client.id": cid,
                  "queue.buffering.max.kbytes": 65536, **conf})
    failed = [0]

    def dr(err, _msg):
        if err is not None:
            failed[0] += 1

    rate = mbps * 1e6
    start = time.monotonic()
    sent = sent_bytes = i = 0
    while not stop.is_set():
        due = rate * (time.monotonic() - start)
        while sent_bytes < due and not stop.is_set():
            v = pool[i % len(pool)]
            i += 1
            try:
                if keyed:
                    p.produce(topic, v, key=b"k%d" % rng.randrange(100000), on_delivery=dr)
                else:
                    p.produce(topic, v, on_delivery=dr)
            except BufferError:
                p.poll(0.01)
                continue
            sent += 1
            sent_bytes += len(v)
        p.poll(0)
        time.sleep(0.002)
    left = p.flush(15)
    out.put({"client_id": cid, "role": "producer", "topic": topic, "records": sent,
             "value_bytes": sent_bytes, "undelivered": left, "failed": failed[0],
             "config": conf, "target_mbps": mbps,
             "mbps": round(sent_bytes / 1e6 / (time.monotonic() - start), 3)})


def consumer(n, delay, bootstrap, stop, out):
    from confluent_kafka import Consumer
    cid = f"kw-bench-consumer-{n}"
    if stop.wait(delay):
        out.put({"client_id": cid, "role": "consumer", "records": 0, "commits": 0})
        return
    c = Consumer({"bootstrap.servers": bootstrap, "client.id": cid, "group.id": GROUP,
                  "partition.assignment.strategy": "range", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    c.subscribe(list(TOPICS))
    got = nbytes = commits = 0
    last = time.monotonic()
    started = time.monotonic()
    while not stop.is_set():
        for m in c.consume(1000, 0.1):
            if m.error() is None:
                got += 1
                nbytes += len(m.value() or b"")
        if time.monotonic() - last >= 1.0:
            last = time.monotonic()
            try:
                c.commit(asynchronous=True)
                commits += 1
            except Exception:  # nothing consumed yet: no offsets to commit
                pass
    c.close()
    out.put({"client_id": cid, "role": "consumer", "group": GROUP, "joined_at_s": delay,
             "records": got, "value_bytes": nbytes, "commits": commits,
             "seconds": round(time.monotonic() - started, 1)})


def lag_monitor(bootstrap, stop, out):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec
    cid = "kw-bench-lag-monitor"
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": cid})
    c = Consumer({"bootstrap.servers": bootstrap, "client.id": cid, "group.id": GROUP,
                  "enable.auto.commit": False})
    tps = [TopicPartition(t, p) for t, n in TOPICS.items() for p in range(n)]
    list_offsets = offset_fetches = errors = 0
    last_fetch = 0.0
    while not stop.is_set():
        t = time.monotonic()
        try:
            fs = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=5)
            for f in fs.values():
                f.result()
            list_offsets += 1
            if t - last_fetch >= 1.0:
                last_fetch = t
                c.committed(tps, timeout=5)
                offset_fetches += 1
        except Exception as e:
            errors += 1
            if errors < 3:
                log(f"{cid}: {e}")
        stop.wait(max(0.0, 0.25 - (time.monotonic() - t)))
    c.close()
    out.put({"client_id": cid, "role": "admin", "list_offsets_rounds": list_offsets,
             "offset_fetch_rounds": offset_fetches, "errors": errors})


def metadata_poller(bootstrap, stop, out):
    from confluent_kafka.admin import AdminClient
    cid = "kw-bench-metadata"
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": cid})
    rounds = errors = 0
    while not stop.is_set():
        t = time.monotonic()
        try:
            admin.list_topics(timeout=5)
            rounds += 1
        except Exception as e:
            errors += 1
            if errors < 3:
                log(f"{cid}: {e}")
        stop.wait(max(0.0, 0.5 - (time.monotonic() - t)))
    out.put({"client_id": cid, "role": "admin", "metadata_rounds": rounds, "errors": errors})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap")
    ap.add_argument("--seconds", type=float, default=600,
                    help="stop after this long if nothing arrived on stdin")
    ap.add_argument("--topics", action="store_true",
                    help="print the topics to create (`NAME PARTITIONS` lines) and exit")
    args = ap.parse_args()
    if args.topics:
        for t, n in TOPICS.items():
            print(t, n)
        return
    if not args.bootstrap:
        ap.error("--bootstrap is required")

    ctx = mp.get_context("fork")
    stop = ctx.Event()
    out = ctx.Queue()
    procs = []
    for spec in PRODUCERS:
        procs.append(ctx.Process(target=producer, args=(*spec, args.bootstrap, stop, out)))
    for n, delay in enumerate(CONSUMER_JOIN_S, 1):
        procs.append(ctx.Process(target=consumer, args=(n, delay, args.bootstrap, stop, out)))
    procs.append(ctx.Process(target=lag_monitor, args=(args.bootstrap, stop, out)))
    procs.append(ctx.Process(target=metadata_poller, args=(args.bootstrap, stop, out)))
    start = time.monotonic()
    for p in procs:
        p.start()
    fact("bench_mix_started", clients=len(procs))

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    stop.wait(args.seconds)
    stop.set()
    seconds = time.monotonic() - start
    clients = []
    d = Deadline(60, "the clients to stop")
    while len(clients) < len(procs):
        try:
            clients.append(out.get(timeout=d.left() or 0.1))
        except Exception:
            d.check()
    for p in procs:
        p.join(10)
    for c in sorted(clients, key=lambda c: c["client_id"]):
        fact("bench_client", **c)
    fact("bench_mix", clients=len(clients), seconds=round(seconds, 1),
         produced_records=sum(c["records"] for c in clients if c["role"] == "producer"),
         produced_bytes=sum(c["value_bytes"] for c in clients if c["role"] == "producer"),
         consumed_records=sum(c.get("records", 0) for c in clients if c["role"] == "consumer"))
    bad = [c for c in clients if c.get("undelivered") or c.get("failed")]
    if bad:
        log(f"undelivered records: {bad}")
        sys.exit(1)


if __name__ == "__main__":
    main()
