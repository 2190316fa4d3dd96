"""Rate-limited load for `cargo xtask bench` (live section): a real librdkafka producer and consumer
(confluent-kafka) moving --megabytes of records through a broker at about --rate-mbps (0 = as fast as
they go), producing and fetching at the same time, while `kwire run` watches.

The consumer joins first (its assignment is awaited), then the producer paces itself to the target
rate; the consumer reads every record back concurrently. Prints one FACT line: records moved and
the seconds the load took (first produce to last record consumed).
"""

import argparse
import sys
import threading
import time

from confluent_kafka import Consumer, Producer

from harness import Deadline, fact, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", default="kw-bench-rate")
    ap.add_argument("--partitions", type=int, default=96)
    ap.add_argument("--megabytes", type=int, default=200)
    ap.add_argument("--value-bytes", type=int, default=10000)
    ap.add_argument("--rate-mbps", type=float, default=0.0)
    args = ap.parse_args()

    value = b"k" * args.value_bytes
    count = args.megabytes * 1_000_000 // args.value_bytes

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "kw-bench-rate-consumer",
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "fetch.max.bytes": 52428800,
        "max.partition.fetch.bytes": 1048576,
        "fetch.wait.max.ms": 50,
    })
    assigned = threading.Event()
    c.subscribe([args.topic], on_assign=lambda _c, _p: assigned.set())
    d = Deadline(30, "the consumer's assignment")
    while not assigned.is_set():
        c.poll(0.1)
        d.check()

    got = [0]
    failed = []

    def consume():
        try:
            d = Deadline(300, "consuming the load")
            while got[0] < count:
                for m in c.consume(10000, 0.2):
                    if m.error() is None:
                        got[0] += 1
                d.check()
        except Exception as e:  # reported below
            failed.append(e)

    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "kw-bench-rate-producer",
        "acks": "1",
        "linger.ms": 5,
        "batch.size": 1000000,
        "queue.buffering.max.kbytes": 262144,
        "enable.idempotence": False,
    })
    t = threading.Thread(target=consume, daemon=True)
    start = time.monotonic()
    t.start()
    rate = args.rate_mbps * 1e6
    d = Deadline(300, "producing the load")
    for i in range(count):
        if rate > 0 and i % 20 == 0:
            ahead = i * args.value_bytes / rate - (time.monotonic() - start)
            if ahead > 0:
                p.poll(0)
                time.sleep(ahead)
        while True:
            try:
                p.produce(args.topic, value, partition=i % args.partitions)
                break
            except BufferError:
                p.poll(0.01)
                d.check()
        if i % 200 == 0:
            p.poll(0)
    left = p.flush(120)
    produced_s = time.monotonic() - start
    if left:
        log(f"{left} records not delivered")
        sys.exit(1)
    t.join(300)
    seconds = time.monotonic() - start
    c.close()
    if failed or got[0] < count:
        log(f"consumed {got[0]}/{count}: {failed}")
        sys.exit(1)
    fact("bench_rate", records=count, value_bytes=args.value_bytes, consumed=got[0],
         produce_seconds=round(produced_s, 3), seconds=round(seconds, 3))


if __name__ == "__main__":
    main()
