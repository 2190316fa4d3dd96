"""Load for `cargo xtask bench`: a real librdkafka producer and consumer (confluent-kafka) moving
--megabytes of records through a broker, so the benchmark capture is real client traffic.

Records are 1000-byte values, produced with acks=1 in large batches across --partitions, then read back
by a consumer group. Prints one FACT line with what was moved.
"""

import argparse
import sys
import time

from confluent_kafka import Consumer, Producer

from harness import Deadline, fact, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--megabytes", type=int, default=300)
    args = ap.parse_args()

    value = b"k" * 1000
    count = args.megabytes * 1000
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "kw-bench-producer",
        "acks": "1",
        "linger.ms": 20,
        "batch.size": 1000000,
        "queue.buffering.max.kbytes": 262144,
        "enable.idempotence": False,
    })
    log(f"producing {count} records")
    d = Deadline(600, "producing the benchmark load")
    for i in range(count):
        while True:
            try:
                p.produce(args.topic, value, partition=i % args.partitions)
                break
            except BufferError:
                p.poll(0.05)
                d.check()
        if i % 10000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left:
        log(f"{left} records not delivered")
        sys.exit(1)

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "kw-bench-consumer",
        "group.id": "kw-bench",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "fetch.max.bytes": 52428800,
        "max.partition.fetch.bytes": 1048576,
    })
    c.subscribe([args.topic])
    got = 0
    errors = 0
    d = Deadline(600, "consuming the benchmark load")
    last = time.monotonic()
    while got < count:
        msgs = c.consume(10000, 1.0)
        for m in msgs:
            if m.error() is None:
                got += 1
            else:
                errors += 1
                if errors < 5:
                    log(f"consumer error: {m.error()}")
        if time.monotonic() - last > 5:
            log(f"consumed {got}/{count}")
            last = time.monotonic()
        d.check()
    c.close()
    fact("bench_load", records=count, value_bytes=1000, consumed=got)


if __name__ == "__main__":
    main()
