#!/usr/bin/env python3
"""confluent-kafka (librdkafka) client for kwire's capture scenarios.

Usage (xtask passes --bootstrap; every other value is fixed by the scenario so captures repeat):

  confluent_client.py produce  --bootstrap B --topic T --partitions P --count N --acks 0|1|all
                               --client-id ID [--compression none|gzip|snappy|lz4|zstd] [--batch]
                               [--counts C0,C1,..] [--value-size S]
      Record i (value "<ID>-<i>", padded to S bytes) goes to partition i % P, or with --counts, Cp
      records go to partition p. Without --batch every record is flushed on its own: exactly one
      record per batch and one Produce request per record. With --batch all records are produced
      first and flushed together (one batch per partition).
  confluent_client.py consume  --bootstrap B --topic T --partitions P --count N --client-id ID
      assign() every partition from the beginning (no group join, no commit), read N records.
  confluent_client.py group    --bootstrap B --topic T --partitions P --group G --strategy S
                               --client-id-prefix X [--commit-on-revoke]
      The two-member rebalance story (see run_group below).
  confluent_client.py offsets  --bootstrap B --topic T --partitions P --client-id ID
      Metadata for all topics, then ListOffsets earliest/latest and by timestamp per partition.
"""

import argparse

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, libversion, version

from harness import Deadline, fact, log, partitions_of, value

TIMEOUT = 30.0  # seconds for any single wait


def run_produce(a):
    p = Producer({
        "bootstrap.servers": a.bootstrap,
        "client.id": a.client_id,
        "acks": a.acks,
        "compression.type": a.compression,
        "enable.idempotence": False,  # no InitProducerId: the request stream stays about acks
        "linger.ms": 1000 if a.batch else 0,
    })
    delivered = {}  # partition -> [offsets]
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.setdefault(msg.partition(), []).append(-1 if msg.offset() is None else msg.offset())

    layout = partitions_of(a.partitions, a.count, a.counts)
    for i, part in enumerate(layout):
        p.produce(a.topic, value=value(a.client_id, i, a.value_size), partition=part,
                  on_delivery=on_delivery)
        if not a.batch:
            if p.flush(TIMEOUT) != 0:
                raise TimeoutError(f"{a.client_id}: record {i} not delivered in {TIMEOUT}s")
    if p.flush(TIMEOUT) != 0:
        raise TimeoutError(f"{a.client_id}: records not delivered in {TIMEOUT}s")
    if errors:
        raise RuntimeError(f"{a.client_id}: delivery errors {errors}")
    fact("produced", client_id=a.client_id, topic=a.topic, acks=a.acks, compression=a.compression,
         batch=a.batch, records=len(layout),
         offsets={str(k): v for k, v in sorted(delivered.items())})


def run_consume(a):
    c = Consumer({
        "bootstrap.servers": a.bootstrap,
        "client.id": a.client_id,
        "group.id": a.client_id,  # required by the binding; assign() never joins the group
        "enable.auto.commit": False,
    })
    c.assign([TopicPartition(a.topic, p, 0) for p in range(a.partitions)])
    got = {}
    d = Deadline(TIMEOUT, f"{a.count} records on {a.topic}")
    n = 0
    while n < a.count:
        d.check()
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(f"consume error: {m.error()}")
        got.setdefault(m.partition(), []).append(m.offset())
        n += 1
    c.close()
    fact("consumed", client_id=a.client_id, topic=a.topic, records=n,
         offsets={str(k): v for k, v in sorted(got.items())})


class Member:
    """One group member; the script polls all members from one thread, in turn."""

    def __init__(self, a, client_id):
        self.a = a
        self.client_id = client_id
        self.cooperative = a.strategy == "cooperative-sticky"
        self.assigned = set()
        self.position = {}  # partition -> next offset (last consumed + 1); None until read
        self.c = Consumer({
            "bootstrap.servers": a.bootstrap,
            "client.id": client_id,
            "group.id": a.group,
            "partition.assignment.strategy": a.strategy,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,  # notice rebalances quickly
        })
        self.c.subscribe([a.topic], on_assign=self.on_assign, on_revoke=self.on_revoke,
                         on_lost=self.on_lost)

    def on_assign(self, consumer, parts):
        new = {tp.partition for tp in parts}
        self.assigned |= new
        for p in new:
            self.position[p] = None
        fact("assigned", client_id=self.client_id, partitions=sorted(new),
             now_owns=sorted(self.assigned), member_id=consumer.memberid())
        # The binding applies the (incremental) assignment itself after this callback.

    def on_revoke(self, consumer, parts):
        gone = {tp.partition for tp in parts}
        if self.a.commit_on_revoke:
            # The recommended hand-off: commit what was processed before giving partitions up.
            self.commit(sorted(p for p in gone if self.position.get(p) is not None), "on_revoke")
        self.assigned -= gone
        fact("revoked", client_id=self.client_id, partitions=sorted(gone),
             now_owns=sorted(self.assigned))

    def on_lost(self, consumer, parts):
        gone = {tp.partition for tp in parts}
        self.assigned -= gone
        fact("lost", client_id=self.client_id, partitions=sorted(gone))

    def poll(self):
        m = self.c.poll(0.05)
        if m is None:
            return
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"{self.client_id}: {m.error()}")
            return
        self.position[m.partition()] = m.offset() + 1

    def caught_up(self, offset):
        """True when this member read up to `offset` (exclusive) on every partition it owns."""
        return bool(self.assigned) and all(self.position.get(p) == offset for p in self.assigned)

    def commit(self, parts, why):
        if not parts:
            return
        offsets = [TopicPartition(self.a.topic, p, self.position[p]) for p in parts]
        self.c.commit(offsets=offsets, asynchronous=False)
        fact("committed", client_id=self.client_id, why=why,
             offsets={str(tp.partition): tp.offset for tp in offsets})

    def commit_owned(self, why):
        self.commit(sorted(self.assigned), why)

    def close(self):
        self.c.close()  # leaves the group (LeaveGroup); cooperative members run on_revoke first
        fact("closed", client_id=self.client_id)


def pump(members, until, what):
    d = Deadline(TIMEOUT, what)
    while not until():
        d.check()
        for m in members:
            m.poll()


def run_group(a):
    """Two members, one topic with P partitions, pre-filled and topped up by a producer.

    1. produce 4 records per partition; member 1 joins alone, reads them, commits offset 4 everywhere
    2. produce 2 more per partition; member 1 reads them (position 6) but does not commit yet
    3. member 2 joins: rebalance. Eager: member 1 loses everything, both restart from the committed
       offset 4. Cooperative: member 1 gives up only the partitions that move (committing 6 for them
       in on_revoke when --commit-on-revoke) and keeps reading the others.
    4. produce 1 more per partition; each member reads up to offset 7 and commits 7 for what it owns
    5. member 2 closes (LeaveGroup): rebalance, member 1 owns every partition again
    6. produce 1 more per partition; member 1 reads up to offset 8, commits 8 everywhere, closes
    """
    everything = set(range(a.partitions))
    prod = Producer({"bootstrap.servers": a.bootstrap, "client.id": f"{a.client_id_prefix}-producer",
                     "acks": "all", "enable.idempotence": False, "linger.ms": 0})
    sent = [0]

    def produce_round(per_partition):
        for _ in range(per_partition):
            for part in sorted(everything):
                prod.produce(a.topic, value=value(f"{a.client_id_prefix}-producer", sent[0]),
                             partition=part)
                sent[0] += 1
        if prod.flush(TIMEOUT) != 0:
            raise TimeoutError("producer flush")
        fact("produced", client_id=f"{a.client_id_prefix}-producer", topic=a.topic,
             per_partition=per_partition, total_sent=sent[0])

    produce_round(4)
    m1 = Member(a, f"{a.client_id_prefix}-1")
    pump([m1], lambda: m1.assigned == everything and m1.caught_up(4), "member 1: assignment + 4")
    m1.commit_owned("step1")

    produce_round(2)
    pump([m1], lambda: m1.caught_up(6), "member 1: offset 6")

    m2 = Member(a, f"{a.client_id_prefix}-2")
    pump([m1, m2], lambda: m1.assigned and m2.assigned and (m1.assigned | m2.assigned) == everything
         and not (m1.assigned & m2.assigned), "rebalance with 2 members")

    produce_round(1)
    pump([m1, m2], lambda: m1.caught_up(7) and m2.caught_up(7), "both members: offset 7")
    m1.commit_owned("step4")
    m2.commit_owned("step4")

    m2.close()
    pump([m1], lambda: m1.assigned == everything, "member 1 owns everything again")

    produce_round(1)
    pump([m1], lambda: m1.caught_up(8), "member 1: offset 8")
    m1.commit_owned("step6")
    m1.close()


def run_offsets(a):
    c = Consumer({"bootstrap.servers": a.bootstrap, "client.id": a.client_id,
                  "group.id": a.client_id, "enable.auto.commit": False})
    md = c.list_topics(timeout=TIMEOUT)  # Metadata request for all topics
    fact("metadata", client_id=a.client_id, topics=sorted(md.topics),
         partitions={t: len(md.topics[t].partitions) for t in sorted(md.topics)})
    for p in range(a.partitions):
        # cached=False: a real ListOffsets round trip (earliest + latest)
        lo, hi = c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=TIMEOUT, cached=False)
        fact("watermarks", client_id=a.client_id, topic=a.topic, partition=p, low=lo, high=hi)
    # ListOffsets by timestamp: first offset with timestamp >= 0 (i.e. the first record)
    res = c.offsets_for_times([TopicPartition(a.topic, p, 0) for p in range(a.partitions)],
                              timeout=TIMEOUT)
    fact("offsets_for_times", client_id=a.client_id, topic=a.topic, timestamp=0,
         offsets={str(tp.partition): tp.offset for tp in res})
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=["produce", "consume", "group", "offsets"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--acks", default="all", choices=["0", "1", "all"])
    ap.add_argument("--compression", default="none")
    ap.add_argument("--batch", action="store_true")
    ap.add_argument("--counts", help="records per partition, e.g. 1,2,3 (instead of --count)")
    ap.add_argument("--value-size", type=int, default=0)
    ap.add_argument("--client-id")
    ap.add_argument("--client-id-prefix")
    ap.add_argument("--group")
    ap.add_argument("--strategy", default="range", choices=["range", "roundrobin", "cooperative-sticky"])
    ap.add_argument("--commit-on-revoke", action="store_true")
    a = ap.parse_args()
    v = version()  # a str in confluent-kafka 2.16 (a tuple in older releases)
    fact("client", library="confluent-kafka", version=v if isinstance(v, str) else v[0],
         librdkafka=libversion()[0])
    {"produce": run_produce, "consume": run_consume, "group": run_group, "offsets": run_offsets}[a.action](a)
    log(f"confluent_client.py {a.action}: done")


if __name__ == "__main__":
    main()
