#!/usr/bin/env python3
"""Bulk Kafka over TLS for the live benchmark's TLS section (`cargo xtask bench --live-only`).

  tls_load.py --bootstrap HOST:PORT --ca CA.pem [--topic T] [--megabytes N] [--record-bytes B]

One confluent-kafka producer (acks=1, 1 MB batches) writes N MB in records of B bytes (default 100 kB)
to partition 0 of an existing topic over TLS (security.protocol=SSL, the given CA), then one consumer
fetches them all back from offset 0. Prints one line `FACT {json}`: records produced and consumed,
record bytes, seconds of produce and of fetch.

Easy to get wrong: it waits 2.5 s after importing confluent_kafka before it connects: the agent finds
a newly mapped OpenSSL (here the one linked into the wheel's librdkafka) on its once-a-second rescan,
and a client that talks sooner has its first exchanges unseen.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--topic", default="kw-bench")
    ap.add_argument("--megabytes", type=int, default=100)
    ap.add_argument("--record-bytes", type=int, default=100_000)
    a = ap.parse_args()
    time.sleep(2.5)
    conf = {"bootstrap.servers": a.bootstrap, "security.protocol": "SSL", "ssl.ca.location": a.ca}
    p = Producer({**conf, "client.id": "kw-bench-p", "acks": "1", "linger.ms": 5,
                  "batch.size": 1_000_000, "message.max.bytes": 2_000_000})
    val = b"x" * a.record_bytes
    n = a.megabytes * 1_000_000 // a.record_bytes
    t0 = time.time()
    for _ in range(n):
        while True:
            try:
                p.produce(a.topic, value=val, partition=0)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    t1 = time.time()
    if left:
        sys.exit(f"{left} records not delivered in 120 s")
    c = Consumer({**conf, "client.id": "kw-bench-c", "group.id": "kw-bench-g",
                  "enable.auto.commit": False, "fetch.max.bytes": 5_000_000})
    c.assign([TopicPartition(a.topic, 0, 0)])
    got = 0
    end = time.time() + 120
    while got < n and time.time() < end:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got += 1
    c.close()
    t2 = time.time()
    print("FACT " + json.dumps({"produced": n, "consumed": got, "record_bytes": a.record_bytes,
                                "produce_seconds": round(t1 - t0, 3),
                                "fetch_seconds": round(t2 - t1, 3)}), flush=True)
    if got < n:
        sys.exit(f"fetched {got} of {n} records in 120 s")


if __name__ == "__main__":
    main()
