#!/usr/bin/env python3
"""kafka-python (pure Python, Java-client-like group logic) client for kwire's capture scenarios.

Usage (xtask passes --bootstrap; every other value is fixed by the scenario so captures repeat):

  kafka_python_client.py produce --bootstrap B --topic T --partitions P --count N --acks 0|1|all
                                 --client-id ID
      Record i (value "<ID>-<i>") goes to partition i % P, each record flushed on its own: one record
      per batch, one Produce request per record.
  kafka_python_client.py consume --bootstrap B --topic T --count N --group G --client-id ID
      Subscribe in group G, read N records, commit what was read (one OffsetCommit), close.
  kafka_python_client.py group   --bootstrap B --topic T --partitions P --group G --client-id-prefix X
      The two-member rebalance story (see run_group below); members commit in
      on_partitions_revoked, the Java-client idiom.
  kafka_python_client.py offsets --bootstrap B --topic T --partitions P --client-id ID
      Metadata for all topics, then beginning_offsets / end_offsets / offsets_for_times.

--api-version 2.1 is needed against librdkafka's mock cluster (version probing fails there).
"""

import argparse
import queue
import threading
import time

import kafka
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from harness import Deadline, fact, log, partitions_of, value

TIMEOUT = 30.0  # seconds for any single wait


def common(a, client_id):
    cfg = {"bootstrap_servers": a.bootstrap.split(","), "client_id": client_id}
    if a.api_version:
        cfg["api_version"] = tuple(int(x) for x in a.api_version.split("."))
    return cfg


def run_produce(a):
    acks = "all" if a.acks == "all" else int(a.acks)
    p = KafkaProducer(**common(a, a.client_id), acks=acks, linger_ms=0,
                      enable_idempotence=False)  # no InitProducerId: tansu rejects old versions
    offsets = {}
    for i, part in enumerate(partitions_of(a.partitions, a.count)):
        fut = p.send(a.topic, value=value(a.client_id, i), partition=part)
        p.flush(timeout=TIMEOUT)
        md = fut.get(timeout=TIMEOUT)  # acks=0: no offset known, nothing to wait for
        if acks == 0:
            # tansu (like every non-Apache broker) answers acks=0 Produce requests; kafka-python
            # expects no answer, aborts the connection ("CorrelationIdError: No in-flight-request
            # found") and a record written meanwhile on that connection is lost. Let the abort
            # happen before the next record so that every record lands, each on a new connection.
            time.sleep(0.3)
        offsets.setdefault(part, []).append(md.offset)
    p.close(timeout=TIMEOUT)
    fact("produced", client_id=a.client_id, topic=a.topic, acks=a.acks, records=a.count,
         offsets={str(k): v for k, v in sorted(offsets.items())})


def run_consume(a):
    c = KafkaConsumer(**common(a, a.client_id), group_id=a.group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=6000,
                      heartbeat_interval_ms=1000)
    c.subscribe([a.topic])
    position = {}
    n = 0
    d = Deadline(TIMEOUT, f"{a.count} records in group {a.group}")
    while n < a.count:
        d.check()
        for tp, records in c.poll(timeout_ms=200).items():
            for r in records:
                position[tp.partition] = r.offset + 1
                n += 1
    c.commit({TopicPartition(a.topic, p): OffsetAndMetadata(o, "", -1) for p, o in position.items()})
    fact("committed", client_id=a.client_id, group=a.group, records=n,
         offsets={str(k): v for k, v in sorted(position.items())})
    c.close()


class Member(ConsumerRebalanceListener):
    """One group member, polled by its own thread.

    Why a thread: kafka-python 3 runs the group join on its IO thread; a join that completes while
    nobody is inside poll() is discarded and a fresh JoinGroup is sent, so members polled in turn
    from one thread rejoin over and over. Each member therefore sits in poll() on its own thread;
    the orchestrating thread hands it work (commit, close) through run() and never touches the
    consumer itself (KafkaConsumer is not thread-safe).
    """

    def __init__(self, a, client_id):
        self.a = a
        self.client_id = client_id
        self.lock = threading.Lock()
        self.assigned = set()
        self.position = {}  # partition -> next offset (last consumed + 1); None until read
        self.jobs = queue.Queue()
        self.error = None
        self.c = KafkaConsumer(**common(a, client_id), group_id=a.group, enable_auto_commit=False,
                               auto_offset_reset="earliest",
                               session_timeout_ms=6000,  # tansu holds a JoinGroup for half of it
                               heartbeat_interval_ms=2000)
        self.c.subscribe([a.topic], listener=self)
        self.thread = threading.Thread(target=self._loop, name=client_id, daemon=True)
        self.thread.start()

    # --- rebalance listener: runs on kafka-python's IO thread ---
    def on_partitions_revoked(self, revoked):
        gone = {tp.partition for tp in revoked}
        # Java-client idiom: commit what was processed before the partitions move. kafka-python 3
        # runs listeners on its IO thread where a blocking commit() is refused: commit_async()
        # queues the OffsetCommit ahead of the JoinGroup.
        with self.lock:
            parts = sorted(p for p in gone if self.position.get(p) is not None)
            offsets = {TopicPartition(self.a.topic, p): OffsetAndMetadata(self.position[p], "", -1)
                       for p in parts}
            self.assigned -= gone
            owns = sorted(self.assigned)
        if offsets:
            self.c.commit_async(offsets, callback=self.on_commit_done)
        fact("revoked", client_id=self.client_id, partitions=sorted(gone), now_owns=owns)

    def on_commit_done(self, offsets, result):
        ok = not isinstance(result, Exception)
        fact("committed", client_id=self.client_id, why="on_revoke", ok=ok,
             error=None if ok else repr(result),
             offsets={str(tp.partition): om.offset for tp, om in sorted(offsets.items())})

    def on_partitions_assigned(self, assigned):
        new = {tp.partition for tp in assigned}
        with self.lock:
            self.assigned = set(new)  # eager protocol: the full assignment every time
            for p in new:
                self.position[p] = None
        fact("assigned", client_id=self.client_id, partitions=sorted(new))

    # --- the member's own thread ---
    def _loop(self):
        try:
            while True:
                try:
                    job, reply = self.jobs.get_nowait()
                except queue.Empty:
                    job = None
                if job is not None:
                    reply.put(job())
                    if job == self._close:
                        return
                    continue
                for tp, records in self.c.poll(timeout_ms=100).items():
                    with self.lock:
                        for r in records:
                            self.position[tp.partition] = r.offset + 1
        except Exception as e:  # surfaced to the orchestrator by check()
            self.error = e

    def run(self, job):
        reply = queue.Queue(1)
        self.jobs.put((job, reply))
        try:
            return reply.get(timeout=TIMEOUT)
        except queue.Empty:
            raise TimeoutError(f"{self.client_id}: {job.__name__} took over {TIMEOUT}s") from None

    def check(self):
        if self.error is not None:
            raise RuntimeError(f"{self.client_id} failed") from self.error

    # --- called from the orchestrating thread ---
    def owns(self):
        with self.lock:
            return set(self.assigned)

    def caught_up(self, offset):
        with self.lock:
            return bool(self.assigned) and all(self.position.get(p) == offset for p in self.assigned)

    def commit_owned(self, why):
        def commit():
            with self.lock:
                parts = sorted(self.assigned)
                offsets = {p: self.position[p] for p in parts}
            self.c.commit({TopicPartition(self.a.topic, p): OffsetAndMetadata(o, "", -1)
                           for p, o in offsets.items()})
            fact("committed", client_id=self.client_id, why=why,
                 offsets={str(p): o for p, o in offsets.items()})
        self.run(commit)

    def _close(self):
        self.c.close(autocommit=False)  # LeaveGroup

    def close(self):
        self.run(self._close)
        self.thread.join(TIMEOUT)
        fact("closed", client_id=self.client_id)


def pump(members, until, what, timeout=TIMEOUT):
    """Wait (the members poll on their own threads) until `until()` holds."""
    d = Deadline(timeout, what)
    while not until():
        d.check()
        for m in members:
            m.check()
        time.sleep(0.02)


def split_between(everything, a, b):
    return bool(a) and bool(b) and (a | b) == everything and not (a & b)


def run_group(a):
    """Same story as confluent_client.py's group, with kafka-python's eager (range) protocol.

    1. produce 4 records per partition; member 1 joins alone, reads them, commits offset 4 everywhere
    2. produce 2 more per partition; member 1 reads them (position 6), no commit yet
    3. member 2 joins: rebalance; member 1 commits 6 for everything in on_partitions_revoked, then
       both own half of the partitions and start from 6
    4. produce 1 more per partition; each member reads up to offset 7 and commits 7 for what it owns
    5. member 2 closes (LeaveGroup): rebalance, member 1 commits 7 for its partitions on revoke and
       then owns every partition
    6. produce 1 more per partition; member 1 reads up to offset 8, commits 8 everywhere, closes
    """
    everything = set(range(a.partitions))
    pid = f"{a.client_id_prefix}-producer"
    prod = KafkaProducer(**common(a, pid), acks="all", linger_ms=0, enable_idempotence=False)
    sent = [0]

    def produce_round(per_partition):
        for _ in range(per_partition):
            for part in sorted(everything):
                prod.send(a.topic, value=value(pid, sent[0]), partition=part)
                prod.flush(timeout=TIMEOUT)  # one record per batch (tansu's offsets stay exact)
                sent[0] += 1
        fact("produced", client_id=pid, topic=a.topic, per_partition=per_partition,
             total_sent=sent[0])

    produce_round(4)
    m1 = Member(a, f"{a.client_id_prefix}-1")
    pump([m1], lambda: m1.owns() == everything and m1.caught_up(4), "member 1: assignment + 4")
    m1.commit_owned("step1")

    produce_round(2)
    pump([m1], lambda: m1.caught_up(6), "member 1: offset 6")

    m2 = Member(a, f"{a.client_id_prefix}-2")
    pump([m1, m2], lambda: split_between(everything, m1.owns(), m2.owns()), "rebalance with 2 members")

    produce_round(1)
    pump([m1, m2], lambda: m1.caught_up(7) and m2.caught_up(7), "both members: offset 7")
    m1.commit_owned("step4")
    m2.commit_owned("step4")

    m2.close()
    pump([m1], lambda: m1.owns() == everything, "member 1 owns everything again")

    produce_round(1)
    pump([m1], lambda: m1.caught_up(8), "member 1: offset 8")
    m1.commit_owned("step6")
    m1.close()
    prod.close(timeout=TIMEOUT)


def run_offsets(a):
    c = KafkaConsumer(**common(a, a.client_id), enable_auto_commit=False)  # no group
    topics = c.topics()  # Metadata for all topics
    fact("metadata", client_id=a.client_id, topics=sorted(topics))
    tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
    begin = c.beginning_offsets(tps)  # ListOffsets timestamp -2 (earliest)
    end = c.end_offsets(tps)  # ListOffsets timestamp -1 (latest)
    fact("beginning_offsets", client_id=a.client_id, topic=a.topic,
         offsets={str(tp.partition): o for tp, o in sorted(begin.items())})
    fact("end_offsets", client_id=a.client_id, topic=a.topic,
         offsets={str(tp.partition): o for tp, o in sorted(end.items())})
    by_time = c.offsets_for_times({tp: 0 for tp in tps})  # first record with timestamp >= 0
    fact("offsets_for_times", client_id=a.client_id, topic=a.topic, timestamp=0,
         offsets={str(tp.partition): (ot.offset if ot else None) for tp, ot in sorted(by_time.items())})
    c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=["produce", "consume", "group", "offsets"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--acks", default="all", choices=["0", "1", "all"])
    ap.add_argument("--client-id")
    ap.add_argument("--client-id-prefix")
    ap.add_argument("--group")
    ap.add_argument("--api-version", help="skip version probing, e.g. 2.1 (needed with the mock)")
    a = ap.parse_args()
    fact("client", library="kafka-python", version=kafka.__version__)
    {"produce": run_produce, "consume": run_consume, "group": run_group, "offsets": run_offsets}[a.action](a)
    log(f"kafka_python_client.py {a.action}: done")


if __name__ == "__main__":
    main()
