#!/usr/bin/env python3
"""aiokafka (asyncio, its own protocol code) client for kwire's capture scenarios.

Usage (xtask passes --bootstrap; every other value is fixed by the scenario so captures repeat):

  aiokafka_client.py produce --bootstrap B --topic T --partitions P --count N --acks 0|1|all
                             --client-id ID
      Record i (value "<ID>-<i>") goes to partition i % P; send_and_wait() per record: one record
      per batch, one Produce request per record.
  aiokafka_client.py consume --bootstrap B --topic T --count N --group G --client-id ID
      Subscribe in group G, read N records, commit what was read (one OffsetCommit), leave.
"""

import argparse
import asyncio

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from harness import Deadline, fact, log, partitions_of, value

TIMEOUT = 30.0  # seconds for any single wait


async def run_produce(a):
    acks = "all" if a.acks == "all" else int(a.acks)
    p = AIOKafkaProducer(bootstrap_servers=a.bootstrap, client_id=a.client_id, acks=acks,
                         linger_ms=0, enable_idempotence=False)
    await asyncio.wait_for(p.start(), TIMEOUT)
    offsets = {}
    try:
        for i, part in enumerate(partitions_of(a.partitions, a.count)):
            md = await asyncio.wait_for(
                p.send_and_wait(a.topic, value=value(a.client_id, i), partition=part), TIMEOUT)
            if acks == 0:
                # send_and_wait() returns None: nothing is awaited. The mock (like every non-Apache
                # broker) still answers; aiokafka has no request waiting for that answer, its
                # reader fails ("IndexError: deque index out of range") and it drops the
                # connection, losing any record written meanwhile. Let that happen before the next
                # record so that every record lands, each on a new connection.
                offsets.setdefault(part, []).append(-1)
                await asyncio.sleep(0.3)
            else:
                offsets.setdefault(part, []).append(md.offset)
    finally:
        await asyncio.wait_for(p.stop(), TIMEOUT)
    fact("produced", client_id=a.client_id, topic=a.topic, acks=a.acks, records=a.count,
         offsets={str(k): v for k, v in sorted(offsets.items())})


async def run_consume(a):
    c = AIOKafkaConsumer(a.topic, bootstrap_servers=a.bootstrap, client_id=a.client_id,
                         group_id=a.group, enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=6000, heartbeat_interval_ms=1000)
    await asyncio.wait_for(c.start(), TIMEOUT)
    position = {}
    n = 0
    try:
        d = Deadline(TIMEOUT, f"{a.count} records in group {a.group}")
        while n < a.count:
            d.check()
            batches = await c.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    position[tp.partition] = r.offset + 1
                    n += 1
        await asyncio.wait_for(
            c.commit({TopicPartition(a.topic, p): o for p, o in position.items()}), TIMEOUT)
        fact("committed", client_id=a.client_id, group=a.group, records=n,
             offsets={str(k): v for k, v in sorted(position.items())})
    finally:
        await asyncio.wait_for(c.stop(), TIMEOUT)  # LeaveGroup


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=["produce", "consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--acks", default="all", choices=["0", "1", "all"])
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--group")
    a = ap.parse_args()
    fact("client", library="aiokafka", version=aiokafka.__version__)
    asyncio.run({"produce": run_produce, "consume": run_consume}[a.action](a))
    log(f"aiokafka_client.py {a.action}: done")


if __name__ == "__main__":
    main()
