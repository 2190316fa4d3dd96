#!/usr/bin/env python3
"""Stories that make kwire's data-loss alerts happen for real (confluent-kafka / librdkafka clients,
plus one kafka-python member in stale-owner).

Each action is one scenario of xtask/src/scenarios.rs (`*-mock` ones need the librdkafka mock
cluster: faults are injected in the middle of the story through its control socket, see
harness.mock; the others run against tansu). Usage (xtask passes --bootstrap):

  alert_stories.py follower-fetch   --bootstrap B --topic T
      KIP-392 follower fetching from a lagging replica: the consumer is told a lower high watermark.
  alert_stories.py acks1-leader-change --bootstrap B --topic T
      acks=1 and acks=all producers while the partition leader moves.
  alert_stories.py follower-bounce  --bootstrap B --topic T
      The consumer bounces between the leader and a lagging follower, told 12, 4, 12, 4, ...
  alert_stories.py stale-commit --bootstrap B --topic T --group G --prefix X
                   --protocol range|cooperative-sticky|consumer [--commit-on-revoke] [--twice]
      Two group members; after a rebalance member 1 commits offsets for partitions it lost
      (with --twice: again at once, and later with another offset).
  alert_stories.py commit-ahead --bootstrap B --topic T
      A consumer commits beyond what it was served, then moves its committed offset back.
  alert_stories.py txn --bootstrap B --topic IN --out-topic OUT
      Consume-transform-produce with transactions (TxnOffsetCommit), clean, then stale.
  alert_stories.py offset-reset --bootstrap B --topic T
      OFFSET_OUT_OF_RANGE below a (follower's) log start and auto.offset.reset=latest.
  alert_stories.py recreate --bootstrap B --topic T          (tansu)
      The topic is deleted and re-created; clients that asked or consumed before ask again.
  alert_stories.py lost-before-restart / lost-after-restart --bootstrap B --topic T   (tansu)
      Records acknowledged with acks=all, the in-memory broker restarted between the two (by xtask):
      the end of log is told below them, their offsets are handed out again.
  alert_stories.py produce-rejected --bootstrap B --topic T
      A Produce refused with a retriable error that succeeds on retry, then one refused with
      MESSAGE_TOO_LARGE that the application never re-sends.
  alert_stories.py old-produce-refused --bootstrap B --topic T
      A kafka-python producer pinned to Produce v7 against a mock that accepts only v8-v10.
  alert_stories.py stale-owner --bootstrap B --topic T
      A member stalled past its session timeout (SIGSTOP) commits as owner after the group moved on
      (it runs `alert_stories.py zombie-member`, a kafka-python member, as its child process).

Every story prints FACT lines: what the client libraries themselves reported (delivered offsets,
watermarks, assignments, commits and their error codes) and every fault injected, in order.

Easy to get wrong: a fault must be injected when the clients are between two requests, or the
story (and the request counts) change from run to run: produce one record per request and flush,
pause a partition and let the last Fetch return before writing more, delay a broker's responses
(broker_rtt) when a race must be won. Range assignment on the mock sorts by member ids that are
memory addresses: which partitions move is read from the clients (the `rebalanced` fact), never
assumed. A fact's `elapsed` counts from the script's start (a child's from its parent's).
"""

import argparse
import re
import time

from confluent_kafka import (OFFSET_END, Consumer, KafkaError, Producer, TopicPartition,
                             libversion, version)

from harness import Deadline, fact, log, mock, value

TIMEOUT = 30.0  # seconds for any single wait


# ----------------------------------------------------------------------------------------------
# small helpers

def producer(a, client_id, acks="all", **extra):
    cfg = {"bootstrap.servers": a.bootstrap, "client.id": client_id, "acks": acks,
           "enable.idempotence": False, "linger.ms": 0}
    cfg.update(extra)
    return Producer(cfg)


def produce_one_by_one(p, client_id, topic, partition, count, first=0):
    """`count` records to one partition, each flushed alone (one record per batch and request).
    Returns the offsets the broker acknowledged."""
    got = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            got.append(msg.offset())

    for i in range(first, first + count):
        p.produce(topic, value=value(client_id, i), partition=partition, on_delivery=on_delivery)
        if p.flush(TIMEOUT) != 0:
            raise TimeoutError(f"{client_id}: record {i} not delivered in {TIMEOUT}s")
    if errors:
        raise RuntimeError(f"{client_id}: delivery errors {errors}")
    return got


def consumer(a, client_id, group=None, **extra):
    cfg = {"bootstrap.servers": a.bootstrap, "client.id": client_id,
           "group.id": group or client_id,  # required by the binding even when never joined
           "enable.auto.commit": False, "auto.offset.reset": "earliest",
           "fetch.wait.max.ms": 100}
    cfg.update(extra)
    return Consumer(cfg)


def read(c, client_id, n, what):
    """Polls until n records arrived; returns [(partition, offset)]."""
    got = []
    d = Deadline(TIMEOUT, f"{client_id}: {what}")
    while len(got) < n:
        d.check()
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError(f"{client_id}: {m.error()}")
        got.append((m.partition(), m.offset()))
    return got


def wait_cached_high(c, client_id, topic, partition, want, what):
    """Polls (no records expected) until the client's cached high watermark, i.e. the last one a
    Fetch response told it, equals `want`."""
    tp = TopicPartition(topic, partition)
    d = Deadline(TIMEOUT, f"{client_id}: {what}")
    while True:
        d.check()
        m = c.poll(0.1)
        if m is not None and not m.error():
            raise RuntimeError(f"{client_id}: unexpected record at {m.partition()}/{m.offset()}")
        lo, hi = c.get_watermark_offsets(tp, cached=True)
        if hi == want:
            return lo, hi


# ----------------------------------------------------------------------------------------------
# follower-fetch-hwm-regression-mock

def run_follower_fetch(a):
    """KIP-392 follower fetching from a replica that lags (mock: partition_follower +
    follower_watermarks). Broker 1 leads both partitions of T; broker 3 is the preferred read
    replica for consumers with client.rack=rack-c.

    1. kw-ff-producer (acks=all) writes 10 records to each partition, one per request.
    2. Partition 1 gets follower 3, whose high watermark lags at 4.
    3. kw-ff-reader (client.rack=rack-c) assigns partition 0 from offset 0 and reads the 10 records
       from the leader (no follower yet for partition 0): high watermark 10.
    4. Partition 0 gets follower 3, lagging at 4. The leader's next Fetch response names preferred
       read replica 3; the reader moves there and is told high watermark 4 at fetch offset 10: the
       end of the log it already consumed went backwards (critical).
    5. kw-ff-tail (client.rack=rack-c) assigns partition 1 at the end (ListOffsets latest: 10); the
       leader answers its first Fetch with high watermark 10 and preferred replica 3, the follower
       with 4: told lower than before, nothing consumed (warning).
    """
    t = a.topic
    mock(a.bootstrap, "broker_rack 1 rack-a", "broker_rack 2 rack-b", "broker_rack 3 rack-c",
         f"partition_leader {t} 0 1", f"partition_leader {t} 1 1")
    p = producer(a, "kw-ff-producer")
    offs = {part: produce_one_by_one(p, "kw-ff-producer", t, part, 10) for part in (0, 1)}
    fact("produced", client_id="kw-ff-producer", topic=t, acks="all",
         offsets={str(k): v for k, v in offs.items()})

    mock(a.bootstrap, f"partition_follower {t} 1 3", f"follower_watermarks {t} 1 - 4")

    r = consumer(a, "kw-ff-reader", **{"client.rack": "rack-c"})
    r.assign([TopicPartition(t, 0, 0)])
    got = read(r, "kw-ff-reader", 10, "10 records from the leader")
    lo, hi = r.get_watermark_offsets(TopicPartition(t, 0), cached=True)
    fact("consumed", client_id="kw-ff-reader", topic=t, partition=0,
         offsets=[o for _, o in got], cached_low=lo, cached_high=hi)

    mock(a.bootstrap, f"partition_follower {t} 0 3", f"follower_watermarks {t} 0 - 4")
    lo, hi = wait_cached_high(r, "kw-ff-reader", t, 0, 4, "high watermark 4 from the follower")
    pos = r.position([TopicPartition(t, 0)])[0].offset
    fact("watermarks", client_id="kw-ff-reader", topic=t, partition=0, cached_low=lo,
         cached_high=hi, position=pos)
    r.close()

    tail = consumer(a, "kw-ff-tail", **{"client.rack": "rack-c"})
    tail.assign([TopicPartition(t, 1, OFFSET_END)])
    lo, hi = wait_cached_high(tail, "kw-ff-tail", t, 1, 4, "high watermark 4 from the follower")
    pos = tail.position([TopicPartition(t, 1)])[0].offset
    fact("watermarks", client_id="kw-ff-tail", topic=t, partition=1, cached_low=lo,
         cached_high=hi, position=pos)
    tail.close()


# ----------------------------------------------------------------------------------------------
# follower-fetch-bounce-mock

def run_follower_bounce(a):
    """A consumer bouncing between the leader and a lagging follower (KIP-392 on the mock). Broker 1
    leads partition 0 of T; broker 3 becomes the preferred read replica for client.rack=rack-c.

    1. kw-fb-producer (acks=all) writes 10 records, one per request.
    2. kw-fb-reader (client.rack=rack-c) assigns partition 0 from offset 0 and reads the 10 records
       from the leader (no follower yet): high watermark 10.
    3. Partition 0 gets follower 3, whose high watermark lags at 4; 2 more records (leader end 12).
    4. The leader answers the reader's Fetch at 10 with high watermark 12, no records and preferred
       read replica 3; broker 3 answers the same Fetch with OFFSET_OUT_OF_RANGE and high watermark
       4 (10 is beyond its end); librdkafka reverts to the leader, which names replica 3 again: told
       12, 4, 12, 4, ... every backoff (about 0.5 s) for 5 s. librdkafka logs each revert with the
       high watermark it was told: the `reverted` fact.
    5. The follower lags further (high watermark 3) for 3 s: told 12, 3, 12, 3, ...
    6. The follower catches up (follows the leader again): the reader reads records 10 and 11 from
       broker 3, high watermark 12, and closes.
    """
    t = a.topic
    mock(a.bootstrap, "broker_rack 1 rack-a", "broker_rack 2 rack-b", "broker_rack 3 rack-c",
         f"partition_leader {t} 0 1")
    p = producer(a, "kw-fb-producer")
    offs = produce_one_by_one(p, "kw-fb-producer", t, 0, 10)
    fact("produced", client_id="kw-fb-producer", topic=t, partition=0, offsets=offs)

    reverts = []

    class Log:  # librdkafka's own log lines: each revert from the follower says what it was told
        def log(self, level, fmt, *args):
            line = fmt % args if args else fmt
            m = re.search(r"out of range \(HighwaterMark (-?\d+) fetching from broker (\d+)", line)
            if m and "reverting to leader" in line:
                reverts.append((int(m.group(1)), int(m.group(2))))

    r = consumer(a, "kw-fb-reader", logger=Log(), **{"client.rack": "rack-c"})
    r.assign([TopicPartition(t, 0, 0)])
    got = read(r, "kw-fb-reader", 10, "10 records from the leader")
    lo, hi = r.get_watermark_offsets(TopicPartition(t, 0), cached=True)
    fact("consumed", client_id="kw-fb-reader", topic=t, partition=0,
         offsets=[o for _, o in got], cached_low=lo, cached_high=hi)

    def bounce(seconds, what):
        """Polls for `seconds` (no record can come); a fact with the follower reverts logged since the
        last one (the first may come before the first poll here)."""
        since = len(reverts)
        d = time.monotonic() + seconds
        while time.monotonic() < d:
            m = r.poll(0.05)
            if m is not None and not m.error():
                raise RuntimeError(f"kw-fb-reader: unexpected record at {m.offset()} ({what})")
        got = reverts[since:] if since else reverts[:]
        fact("reverted", client_id="kw-fb-reader", topic=t, partition=0, what=what,
             high_watermarks=[h for h, _ in got], brokers=sorted({b for _, b in got}),
             position=r.position([TopicPartition(t, 0)])[0].offset)

    mock(a.bootstrap, f"partition_follower {t} 0 3", f"follower_watermarks {t} 0 - 4")
    offs = produce_one_by_one(p, "kw-fb-producer", t, 0, 2, first=10)
    fact("produced", client_id="kw-fb-producer", topic=t, partition=0, offsets=offs)
    bounce(5.0, "follower at 4")
    mock(a.bootstrap, f"follower_watermarks {t} 0 - 3")
    bounce(3.0, "follower at 3")
    mock(a.bootstrap, f"follower_watermarks {t} 0 - -")
    got = read(r, "kw-fb-reader", 2, "records 10 and 11 from the caught-up follower")
    lo, hi = r.get_watermark_offsets(TopicPartition(t, 0), cached=True)
    fact("consumed", client_id="kw-fb-reader", topic=t, partition=0,
         offsets=[o for _, o in got], cached_low=lo, cached_high=hi)
    r.close()
    # Every revert librdkafka logged, in order (one per OFFSET_OUT_OF_RANGE answer of the follower).
    fact("reverts", client_id="kw-fb-reader", topic=t, partition=0,
         high_watermarks=[h for h, _ in reverts], brokers=sorted({b for _, b in reverts}))


# ----------------------------------------------------------------------------------------------
# acks1-leader-change-mock

def run_acks1_leader_change(a):
    """Two producers write to partition 0 of T in turns, one record per request: kw-lc-acks1
    (acks=1) and kw-lc-acksall (acks=all). Broker 1 leads; after 5 rounds the leader moves to
    broker 2 (mock partition_leader). The next Produce of each goes to broker 1, is answered
    NOT_LEADER_OR_FOLLOWER (with the new leader), and is retried on broker 2. 10 rounds in all.
    """
    t = a.topic
    mock(a.bootstrap, f"partition_leader {t} 0 1")
    ids = ("kw-lc-acks1", "kw-lc-acksall")
    prods = {"kw-lc-acks1": producer(a, "kw-lc-acks1", acks="1"),
             "kw-lc-acksall": producer(a, "kw-lc-acksall", acks="all")}
    offs = {cid: [] for cid in ids}
    for i in range(10):
        if i == 5:
            mock(a.bootstrap, f"partition_leader {t} 0 2")
        for cid in ids:
            offs[cid] += produce_one_by_one(prods[cid], cid, t, 0, 1, first=i)
    for cid in ids:
        fact("produced", client_id=cid, topic=t, partition=0,
             acks="1" if cid.endswith("acks1") else "all", offsets=offs[cid])


# ----------------------------------------------------------------------------------------------
# commit-after-revoke-{cooperative,eager,kip848}-mock

# Refusals of a commit that mean "the group moved on while you were committing".
REBALANCE_REFUSALS = {getattr(KafkaError, n) for n in
                      ("REBALANCE_IN_PROGRESS", "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID",
                       "FENCED_MEMBER_EPOCH", "STALE_MEMBER_EPOCH") if hasattr(KafkaError, n)}


def kafka_error_code(e):
    """The librdkafka error code carried by an exception from confluent-kafka: a KafkaException
    holds a KafkaError in args[0]; some paths (a callback's exception re-raised by poll) surface
    the KafkaError itself. None when it is neither."""
    for obj in (e, *getattr(e, "args", ())):
        code = getattr(obj, "code", None)
        if callable(code):
            try:
                return code()
            except Exception:  # noqa: BLE001 - not a KafkaError after all
                continue
    return None


class Member:
    """One group member, polled from the script's single thread. `protocol` is an assignor of the
    classic protocol (range, cooperative-sticky) or "consumer" for KIP-848 (group.protocol=consumer:
    the broker assigns; no assignor, session or heartbeat settings on the client)."""

    def __init__(self, a, client_id, group, protocol, commit_on_revoke):
        self.a = a
        self.client_id = client_id
        self.commit_on_revoke = commit_on_revoke
        self.assigned = set()
        self.position = {}  # partition -> next offset to read (last consumed + 1)
        extra = {"auto.offset.reset": "earliest", "fetch.wait.max.ms": 500}
        if protocol == "consumer":
            extra["group.protocol"] = "consumer"
        else:
            extra.update({"partition.assignment.strategy": protocol, "session.timeout.ms": 6000,
                          "heartbeat.interval.ms": 500})
        self.c = consumer(a, client_id, group=group, **extra)
        self.c.subscribe([a.topic], on_assign=self.on_assign, on_revoke=self.on_revoke,
                         on_lost=self.on_lost)

    def on_assign(self, c, parts):
        new = {tp.partition for tp in parts}
        self.assigned |= new
        for p in new:
            self.position[p] = None
        fact("assigned", client_id=self.client_id, partitions=sorted(new),
             now_owns=sorted(self.assigned), member_id=c.memberid())

    def on_revoke(self, c, parts):
        gone = {tp.partition for tp in parts}
        if self.commit_on_revoke:
            parts = sorted(p for p in gone if self.position.get(p) is not None)
            try:
                self.commit(parts, "on_revoke")
            except Exception as e:  # KafkaException(KafkaError); re-raised as-is if not a refusal
                # The hand-off commit can be refused when the group is already rebalancing again (a
                # slow, loaded machine: the broker moved on before this callback ran). A real
                # application logs it and goes on; the story's later steps do not depend on it (member
                # 2 starts from the step-1 commit instead, and still reads to 7). An exception raised
                # here would leave poll() and end the story instead.
                code = kafka_error_code(e)
                if code not in REBALANCE_REFUSALS:
                    raise
                fact("commit_refused", client_id=self.client_id, why="on_revoke",
                     partitions=parts, error=str(e))
        self.assigned -= gone
        fact("revoked", client_id=self.client_id, partitions=sorted(gone),
             now_owns=sorted(self.assigned), member_id=c.memberid())

    def on_lost(self, c, parts):
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
        return bool(self.assigned) and all(self.position.get(p) == offset for p in self.assigned)

    def commit(self, parts, why):
        """Synchronous commit of this member's positions for `parts` (owned or not: the broker
        checks only the generation / member epoch). Records the per-partition error codes."""
        if not parts:
            return
        offsets = [TopicPartition(self.a.topic, p, self.position[p]) for p in parts]
        res = self.c.commit(offsets=offsets, asynchronous=False)
        errors = {str(tp.partition): (tp.error.code() if tp.error else 0) for tp in res}
        fact("committed", client_id=self.client_id, why=why, member_id=self.c.memberid(),
             offsets={str(tp.partition): tp.offset for tp in offsets}, errors=errors)
        return errors

    def close(self):
        self.c.close()
        fact("closed", client_id=self.client_id)


def pump(members, until, what, timeout=TIMEOUT):
    d = Deadline(timeout, what)
    while not until():
        d.check()
        for m in members:
            m.poll()


def run_stale_commit(a):
    """Two members of group G on the 4 partitions of T (pre-filled by kw-<x>-producer, acks=all);
    <x> = a.prefix. `--protocol` is range (eager), cooperative-sticky or consumer (KIP-848).

    1. produce 4 records per partition; member 1 joins alone, owns 0-3, reads them, commits 4.
    2. produce 2 more per partition; member 1 reads them (position 6), does not commit.
    3. member 2 joins: rebalance. Member 1 keeps two partitions and loses two; with
       --commit-on-revoke it commits 6 for those in its revoke callback (the hand-off).
    4. produce 1 more per partition; both read to 7 and commit 7 for what they own.
    5. THE BUG: member 1 commits its old positions (6) for the two partitions it lost, explicitly
       (commit(offsets=[...])). librdkafka sends them with its current generation / member epoch
       and the broker accepts them: member 2's committed 7 is rewound to 6.
    6. member 2 closes (leaves); member 1 gets every partition back (reading nothing new), closes.

    With --twice, between 5 and 6: member 1 commits 6 for them once more at once (nothing changed
    since: a repeat); 2 more records per partition, both read to 9, member 2 commits 9; member 1
    commits 5 for the partitions it lost (a different offset, deliberately): accepted, member 2's 9
    is rewound to 5.
    """
    pre = a.prefix
    everything = set(range(4))
    prod = producer(a, f"{pre}-producer")
    sent = [0]

    def produce_round(per_partition):
        for _ in range(per_partition):
            for part in sorted(everything):
                prod.produce(a.topic, value=value(f"{pre}-producer", sent[0]), partition=part)
                sent[0] += 1
        if prod.flush(TIMEOUT) != 0:
            raise TimeoutError("producer flush")
        fact("produced", client_id=f"{pre}-producer", topic=a.topic, per_partition=per_partition,
             total_sent=sent[0])

    slow = 60 if a.protocol == "consumer" else TIMEOUT  # KIP-848: the mock's heartbeats are 3 s apart
    produce_round(4)
    m1 = Member(a, f"{pre}-1", a.group, a.protocol, a.commit_on_revoke)
    pump([m1], lambda: m1.assigned == everything and m1.caught_up(4), "member 1: assignment + 4",
         slow)
    m1.commit(sorted(m1.assigned), "step1")

    produce_round(2)
    pump([m1], lambda: m1.caught_up(6), "member 1: offset 6")

    m2 = Member(a, f"{pre}-2", a.group, a.protocol, a.commit_on_revoke)
    pump([m1, m2], lambda: m1.assigned and m2.assigned and (m1.assigned | m2.assigned) == everything
         and not (m1.assigned & m2.assigned), "rebalance with 2 members", slow)
    lost = sorted(everything - m1.assigned)
    fact("rebalanced", member1_owns=sorted(m1.assigned), member2_owns=sorted(m2.assigned),
         member1_lost=lost, member1_id=m1.c.memberid(), member2_id=m2.c.memberid())

    produce_round(1)
    pump([m1, m2], lambda: m1.caught_up(7) and m2.caught_up(7), "both members: offset 7")
    m1.commit(sorted(m1.assigned), "step4")
    m2.commit(sorted(m2.assigned), "step4")

    errors = m1.commit(lost, "stale")
    if any(e != 0 for e in errors.values()):
        raise RuntimeError(f"the stale commit was rejected: {errors}")

    if a.twice:
        # The same late commit again at once (nothing changed since: a repeat, no new harm), then,
        # after member 2 has moved on (9) and committed, one more late commit with a different offset
        # (5): accepted, it rewinds member 2's committed 9.
        errors = m1.commit(lost, "stale_again")
        produce_round(2)
        pump([m1, m2], lambda: m1.caught_up(9) and m2.caught_up(9), "both members: offset 9")
        m2.commit(sorted(m2.assigned), "owned_9")
        for p in lost:
            m1.position[p] = 5
        errors.update(m1.commit(lost, "stale_later"))
        if any(e != 0 for e in errors.values()):
            raise RuntimeError(f"a later stale commit was rejected: {errors}")

    m2.close()
    pump([m1], lambda: m1.assigned == everything, "member 1 owns everything again", slow)
    m1.close()


# ----------------------------------------------------------------------------------------------
# commit-ahead-and-regression-mock

def run_commit_ahead(a):
    """One consumer (kw-ca-consumer, group kw-ca, range) on partition 0 of T.

    1. kw-ca-producer (acks=all) writes 6 records, one per request.
    2. The consumer joins, reads the 6 (offsets 0-5) and commits 6: quiet.
    3. It pauses the partition (no more Fetch), waits for its last Fetch to return, and the producer
       writes 4 more records (log end 10).
    4. "Skip the backlog": the consumer asks the end offset (ListOffsets latest: 10) and commits it,
       although it was served only up to 6: records 6-9 are skipped (commit_ahead_of_fetch).
    5. "Undo": it commits 6 again, lower than the 10 before (committed_offset_regression).
    """
    t = a.topic
    tp = TopicPartition(t, 0)
    p = producer(a, "kw-ca-producer")
    offs = produce_one_by_one(p, "kw-ca-producer", t, 0, 6)
    fact("produced", client_id="kw-ca-producer", topic=t, partition=0, offsets=offs)

    m = Member(a, "kw-ca-consumer", "kw-ca", "range", False)
    pump([m], lambda: m.caught_up(6), "kw-ca-consumer: 6 records")
    m.commit([0], "consumed")

    m.c.pause([tp])
    fact("paused", client_id="kw-ca-consumer", topic=t, partition=0)
    d = time.monotonic() + 1.0  # > fetch.wait.max.ms: the last Fetch has returned, none follows
    while time.monotonic() < d:
        m.poll()
    offs = produce_one_by_one(p, "kw-ca-producer", t, 0, 4, first=6)
    fact("produced", client_id="kw-ca-producer", topic=t, partition=0, offsets=offs)

    lo, hi = m.c.get_watermark_offsets(tp, timeout=TIMEOUT, cached=False)
    fact("watermarks", client_id="kw-ca-consumer", topic=t, partition=0, low=lo, high=hi)
    served = m.position[0]
    m.position[0] = hi
    m.commit([0], "skip_to_end")
    fact("skipped", client_id="kw-ca-consumer", served_up_to=served, committed=hi)
    m.position[0] = served
    m.commit([0], "rewind")
    m.close()


# ----------------------------------------------------------------------------------------------
# txn-offset-commit-mock

def run_txn(a):
    """Consume-transform-produce with transactions: group kw-tx reads kw-txin (2 partitions),
    kw-tx-producer (transactional.id kw-tx) writes to kw-txout and commits the consumed offsets in
    the transaction (AddOffsetsToTxn + TxnOffsetCommit, send_offsets_to_transaction).

    1. kw-tx-feeder (acks=all) writes 4 records to each input partition, one per request.
    2. kw-tx-1 (range) joins alone, owns [0, 1], reads the 8; transaction 1: 8 records to
       kw-txout, offsets {0: 4, 1: 4} sent to the transaction with kw-tx-1's group metadata, commit.
    3. 2 more records per input partition; kw-tx-1 reads them (positions 6, 6); transaction 2
       likewise with {0: 6, 1: 6}. Everything so far is clean.
    4. 1 more record per input partition; kw-tx-1 reads them (positions 7, 7) but does not commit.
    5. kw-tx-2 (a plain consumer, same group) joins: eager rebalance, each member gets one input
       partition and restarts from the committed 6; kw-tx-2 reads to 7 and commits 7 (OffsetCommit).
    6. THE BUG: transaction 3 still sends kw-tx-1's old positions for BOTH input partitions ({0: 7,
       1: 7}) with kw-tx-1's (current) group metadata: the TxnOffsetCommit for the partition
       kw-tx-1 lost is accepted.
    7. ANOTHER BUG: transaction 4 commits kw-tx-1's position + 2 for the partition it still owns
       (served up to 7, committed 9): records 7 and 8 are skipped by the group.
    8. Both consumers close.
    """
    tin, tout = a.topic, a.out_topic
    feeder = producer(a, "kw-tx-feeder")

    def feed(n):
        offs = {}
        for part in (0, 1):
            offs[str(part)] = produce_one_by_one(feeder, "kw-tx-feeder", tin, part, n,
                                                 first=sum(len(v) for v in offs.values()))
        fact("produced", client_id="kw-tx-feeder", topic=tin, offsets=offs)

    txp = Producer({"bootstrap.servers": a.bootstrap, "client.id": "kw-tx-producer",
                    "transactional.id": "kw-tx", "acks": "all", "linger.ms": 0})
    txp.init_transactions(TIMEOUT)
    fact("init_transactions", client_id="kw-tx-producer", transactional_id="kw-tx")

    def transaction(m, positions, why):
        txp.begin_transaction()
        for part, pos in sorted(positions.items()):
            txp.produce(tout, value=value("kw-tx-producer", part * 1000 + pos), partition=0)
        offsets = [TopicPartition(tin, part, pos) for part, pos in sorted(positions.items())]
        txp.send_offsets_to_transaction(offsets, m.c.consumer_group_metadata(), TIMEOUT)
        txp.commit_transaction(TIMEOUT)
        fact("transaction", client_id="kw-tx-producer", why=why, member_id=m.c.memberid(),
             offsets={str(tp.partition): tp.offset for tp in offsets})

    feed(4)
    m1 = Member(a, "kw-tx-1", "kw-tx", "range", False)
    pump([m1], lambda: m1.assigned == {0, 1} and m1.caught_up(4), "kw-tx-1: 8 records")
    transaction(m1, {0: 4, 1: 4}, "clean")
    feed(2)
    pump([m1], lambda: m1.caught_up(6), "kw-tx-1: positions 6")
    transaction(m1, {0: 6, 1: 6}, "clean")
    feed(1)
    pump([m1], lambda: m1.caught_up(7), "kw-tx-1: positions 7")
    stale = {p: m1.position[p] for p in (0, 1)}

    m2 = Member(a, "kw-tx-2", "kw-tx", "range", False)
    pump([m1, m2], lambda: m1.assigned and m2.assigned and not (m1.assigned & m2.assigned)
         and (m1.assigned | m2.assigned) == {0, 1}, "rebalance with 2 members")
    fact("rebalanced", member1_owns=sorted(m1.assigned), member2_owns=sorted(m2.assigned),
         member1_id=m1.c.memberid(), member2_id=m2.c.memberid())
    pump([m1, m2], lambda: m1.caught_up(7) and m2.caught_up(7), "both members: positions 7")
    m2.commit(sorted(m2.assigned), "owned")

    transaction(m1, stale, "stale")
    # Another bug: committing past what was consumed (here 2 beyond kw-tx-1's position on the
    # partition it still owns): the records in between are skipped by the group.
    transaction(m1, {p: m1.position[p] + 2 for p in sorted(m1.assigned)}, "ahead")
    m2.close()
    m1.close()
    txp.flush(TIMEOUT)


# ----------------------------------------------------------------------------------------------
# offset-reset-jump-mock

def run_offset_reset(a):
    """A consumer whose fetch offset is below the log start of the replica it reads from, with
    auto.offset.reset=latest. Neither peer here can move a leader's log start (the mock has no
    DeleteRecords and 5 MB size retention; tansu 0.6 panics on DeleteRecords), so the log start
    that moved is the follower's: broker 1 leads partition 0 of T, broker 3 is the preferred read
    replica (KIP-392) and its log starts at 4 (follower_watermarks T 0 4 -), as after retention.

    1. kw-orj-producer (acks=all) writes 10 records, one per request.
    2. kw-orj-consumer (client.rack=rack-c, auto.offset.reset=latest) assigns partition 0 at
       offset 0 (a committed or seeked offset below that log start). The leader names replica 3;
       broker 3 answers OFFSET_OUT_OF_RANGE for offset 0; librdkafka resets to latest
       (ListOffsets latest on the leader: 10) and resumes at 10: records 0-9 are never read.
    """
    t = a.topic
    mock(a.bootstrap, "broker_rack 1 rack-a", "broker_rack 2 rack-b", "broker_rack 3 rack-c",
         f"partition_leader {t} 0 1")
    p = producer(a, "kw-orj-producer")
    offs = produce_one_by_one(p, "kw-orj-producer", t, 0, 10)
    fact("produced", client_id="kw-orj-producer", topic=t, partition=0, offsets=offs)
    mock(a.bootstrap, f"partition_follower {t} 0 3", f"follower_watermarks {t} 0 4 -")

    resets = []

    class Log:  # librdkafka's own log lines (the binding's `logger`): its offset reset says why
        def log(self, level, fmt, *args):
            line = fmt % args if args else fmt
            if "offset reset" in line:
                resets.append(line)

    c = consumer(a, "kw-orj-consumer", logger=Log(),
                 **{"client.rack": "rack-c", "auto.offset.reset": "latest",
                    "enable.partition.eof": True})
    c.assign([TopicPartition(t, 0, 0)])
    d = Deadline(TIMEOUT, "kw-orj-consumer: reset to the end")
    eof = None
    while eof is None:
        d.check()
        m = c.poll(0.1)
        if m is None:
            continue
        if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
            eof = m.offset()  # where the consumer now is: the end of the partition
        elif m.error():
            raise RuntimeError(f"kw-orj-consumer: {m.error()}")
        else:
            raise RuntimeError(f"kw-orj-consumer: unexpected record at {m.offset()}")
    lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), cached=True)
    fact("reset", client_id="kw-orj-consumer", topic=t, partition=0, assigned_at=0,
         partition_eof_at=eof, cached_low=lo, cached_high=hi, librdkafka_log=resets)
    c.close()


# ----------------------------------------------------------------------------------------------
# listoffsets-recreate-tansu

def latest(a, client_id, t):
    """A fresh client asks the watermarks of partition 0 (ListOffsets earliest, then latest),
    as a monitoring job or a Spark driver does before each batch."""
    c = consumer(a, client_id)
    lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=TIMEOUT, cached=False)
    fact("watermarks", client_id=client_id, topic=t, partition=0, low=lo, high=hi)
    c.close()
    return hi


def run_recreate(a):
    """Topic T (1 partition) on tansu is deleted and re-created under the clients' feet. tansu
    answers ListOffsets(latest) with the last batch's base offset + 1, so every record is its own
    batch (one per request) and the answers are exact.

    1. kw-rc-producer writes 5 records (offsets 0-4).
    2. kw-rc-watch asks the watermarks: 0, 5.
    3. kw-rc-consumer (group kw-rc) reads the 5 records and commits 5, closes.
    4. kw-rc-admin deletes T and creates it again (1 partition): DeleteTopics, CreateTopics.
    5. kw-rc-producer writes 2 records (offsets 0-1 of the new topic).
    6. kw-rc-watch asks again: 0, 2. Told 5 before, 2 now: the end of the log went backwards.
    7. kw-rc-consumer asks the watermarks (as a Spark driver does before a batch): 0, 2, below the
       5 it consumed and committed.
    """
    from confluent_kafka.admin import AdminClient, NewTopic
    t = a.topic
    p = producer(a, "kw-rc-producer")
    offs = produce_one_by_one(p, "kw-rc-producer", t, 0, 5)
    fact("produced", client_id="kw-rc-producer", topic=t, partition=0, offsets=offs)
    p.flush(TIMEOUT)
    del p

    latest(a, "kw-rc-watch", t)

    m = Member(a, "kw-rc-consumer", "kw-rc", "range", False)
    pump([m], lambda: m.caught_up(5), "kw-rc-consumer: 5 records")
    m.commit([0], "consumed")
    m.close()

    admin = AdminClient({"bootstrap.servers": a.bootstrap, "client.id": "kw-rc-admin"})
    for topic, f in admin.delete_topics([t], operation_timeout=10).items():
        f.result(TIMEOUT)
        fact("deleted", client_id="kw-rc-admin", topic=topic)
    for topic, f in admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)],
                                        operation_timeout=10).items():
        f.result(TIMEOUT)
        fact("created", client_id="kw-rc-admin", topic=topic, partitions=1)
    del admin

    p = producer(a, "kw-rc-producer")
    offs = produce_one_by_one(p, "kw-rc-producer", t, 0, 2, first=5)
    fact("produced", client_id="kw-rc-producer", topic=t, partition=0, offsets=offs)
    p.flush(TIMEOUT)
    del p

    latest(a, "kw-rc-watch", t)
    latest(a, "kw-rc-consumer", t)


# ----------------------------------------------------------------------------------------------
# acked-lost-restart-tansu

def run_lost_before_restart(a):
    """Before tansu (in-memory storage) is restarted on the same port by xtask:
    1. kw-rl-producer (acks=all, one record per request) writes 5 records: offsets 0-4.
    2. kw-rl-watch asks the watermarks: 0, 5.
    """
    t = a.topic
    p = producer(a, "kw-rl-producer")
    offs = produce_one_by_one(p, "kw-rl-producer", t, 0, 5)
    fact("produced", client_id="kw-rl-producer", topic=t, partition=0, acks="all", offsets=offs)
    p.flush(TIMEOUT)
    del p
    latest(a, "kw-rl-watch", t)


def run_lost_after_restart(a):
    """After the restart (xtask re-created T with `tansu topic create`, as operator tooling would):
    3. kw-rl-watch asks again: 0, 0. The 5 records acknowledged before are gone.
    4. kw-rl-producer writes 2 records: offsets 0-1, handed out again.
    """
    t = a.topic
    latest(a, "kw-rl-watch", t)
    p = producer(a, "kw-rl-producer")
    offs = produce_one_by_one(p, "kw-rl-producer", t, 0, 2, first=5)
    fact("produced", client_id="kw-rl-producer", topic=t, partition=0, acks="all", offsets=offs)
    p.flush(TIMEOUT)
    del p


# ----------------------------------------------------------------------------------------------
# produce-rejected-mock

def run_produce_rejected(a):
    """Partition 0 of T on the mock, acks=all producers without idempotence, one record each:
    1. kw-pr-retry: the mock answers its first Produce NOT_ENOUGH_REPLICAS (19, retriable);
       librdkafka re-sends the same batch, acknowledged at offset 0.
    2. kw-pr-big: the mock answers its first Produce MESSAGE_TOO_LARGE (10, non-retriable); the
       delivery report says so and the application does not send the record again. Its next record
       is acknowledged at offset 1.
    """
    t = a.topic
    p = producer(a, "kw-pr-retry")
    mock(a.bootstrap, "request_errors Produce 19")
    offs = produce_one_by_one(p, "kw-pr-retry", t, 0, 1)
    fact("produced", client_id="kw-pr-retry", topic=t, partition=0, acks="all", offsets=offs)
    del p

    p = producer(a, "kw-pr-big")
    mock(a.bootstrap, "request_errors Produce 10")
    got = []

    def on_delivery(err, msg):
        got.append(err)

    p.produce(t, value=value("kw-pr-big", 0), partition=0, on_delivery=on_delivery)
    if p.flush(TIMEOUT) != 0 or len(got) != 1 or got[0] is None:
        raise RuntimeError(f"kw-pr-big: expected a delivery error, got {got}")
    fact("delivery_failed", client_id="kw-pr-big", topic=t, partition=0, error=got[0].name(),
         code=got[0].code(), retriable=got[0].retriable())
    offs = produce_one_by_one(p, "kw-pr-big", t, 0, 1, first=1)
    fact("produced", client_id="kw-pr-big", topic=t, partition=0, acks="all", offsets=offs)
    del p


def run_old_produce_refused(a):
    """A client whose old Produce version the broker refuses outright:
    1. The mock is told to accept Produce v8-v10 only (`apiversion Produce 8 10`).
    2. kw-old-producer (kafka-python pinned to api_version (2, 1): Produce v7; acks=all, retries=0)
       sends one record to partition 0: the mock closes the connection without an answer; the send
       fails and the application does not retry.
    3. 65 s later (past produce_rejected's default resend_window_s of packet time), kw-old-watch asks
       Metadata, so that the capture's packet time moves on.
    """
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError as PyKafkaError
    t = a.topic
    boot = a.bootstrap.split(",")
    mock(a.bootstrap, "apiversion Produce 8 10")
    p = KafkaProducer(bootstrap_servers=boot, client_id="kw-old-producer", api_version=(2, 1),
                      acks="all", retries=0, linger_ms=0, enable_idempotence=False,
                      request_timeout_ms=5000)
    fut = p.send(t, value=value("kw-old-producer", 0), partition=0)
    p.flush(timeout=TIMEOUT)
    try:
        md = fut.get(timeout=TIMEOUT)
        raise RuntimeError(f"kw-old-producer: delivered at {md.offset}, expected a refusal")
    except PyKafkaError as e:
        fact("delivery_failed", client_id="kw-old-producer", topic=t, partition=0,
             error=type(e).__name__, retriable=bool(getattr(e, "retriable", False)))
    p.close(timeout=TIMEOUT)
    time.sleep(65)
    c = KafkaConsumer(bootstrap_servers=boot, client_id="kw-old-watch", api_version=(2, 1))
    fact("topics", client_id="kw-old-watch", topics=sorted(c.topics()))
    c.close()


# ----------------------------------------------------------------------------------------------
# stale-owner-commit-mock

def run_zombie_member(a):
    """The child process of run_stale_owner: a kafka-python member (Java-client-like group logic)
    of group kw-so. Reads 4 records of each partition of T, commits them, prints READY, then waits
    for one line on stdin (the parent stops this process meanwhile) and commits again at once."""
    import sys
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    from kafka.structs import OffsetAndMetadata
    cid = "kw-so-1"
    c = KafkaConsumer(bootstrap_servers=a.bootstrap.split(","), client_id=cid, group_id="kw-so",
                      api_version=(2, 1),  # version probing fails against the mock
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      session_timeout_ms=6000, heartbeat_interval_ms=1000)
    c.subscribe([a.topic])
    pos = {}
    d = Deadline(TIMEOUT, f"{cid}: 4 records per partition")
    while pos != {0: 4, 1: 4}:
        d.check()
        for tp, records in c.poll(timeout_ms=100).items():
            for r in records:
                pos[tp.partition] = r.offset + 1
    owned = sorted(tp.partition for tp in c.assignment())
    offsets = {KTP(a.topic, p): OffsetAndMetadata(o, "", -1) for p, o in sorted(pos.items())}
    c.commit(offsets)
    fact("committed", client_id=cid, why="owned", owns=owned, generation=c._coordinator._generation.generation_id,
         member_id=c._coordinator._generation.member_id, offsets={str(p): o for p, o in sorted(pos.items())})
    print("READY", flush=True)
    sys.stdin.readline()  # stopped (SIGSTOP) here by the parent, then woken with a line to read
    try:
        c.commit(offsets)
        fact("committed", client_id=cid, why="zombie", ok=True, offsets={str(p): o for p, o in sorted(pos.items())})
    except Exception as e:  # CommitFailedError: the broker no longer knows the member
        fact("committed", client_id=cid, why="zombie", ok=False, error=type(e).__name__,
             offsets={str(p): o for p, o in sorted(pos.items())})
    c.close(autocommit=False)
    fact("closed", client_id=cid)


def run_stale_owner(a):
    """Split brain: a member stalls (a long GC pause, a frozen VM: here SIGSTOP) beyond the session
    timeout, the group moves on without it, and when it wakes up it commits as the owner it still
    believes it is. Group kw-so (range, coordinator pinned to broker 1), topic T with 2 partitions.

    1. kw-so-producer (acks=all) writes 4 records per partition.
    2. kw-so-1 (kafka-python, its own process) joins alone (generation 2), owns [0, 1], reads the 8
       records and commits 4, 4.
    3. The script stops kw-so-1's process (SIGSTOP). 9 s later the mock has expired its session
       (6 s) and removed it from the group.
    4. kw-so-2 (confluent-kafka) joins (generation 3), owns [0, 1]; 2 more records per partition;
       it reads them and commits 6, 6.
    5. Broker 1's responses are delayed by 500 ms (broker_rtt), then kw-so-1 is woken (SIGCONT) with
       the order to commit: kafka-python sends its OffsetCommit with its old member id and generation
       2 before any response can tell it that it was removed. The broker rejects it
       (UNKNOWN_MEMBER_ID); a broker that did not would let it rewind kw-so-2's offsets.
    6. The delay is removed; kw-so-1 closes, kw-so-2 closes.
    """
    import os
    import signal
    import subprocess
    import sys
    t = a.topic
    mock(a.bootstrap, "coordinator group kw-so 1")
    prod = producer(a, "kw-so-producer")
    offs = {str(part): produce_one_by_one(prod, "kw-so-producer", t, part, 4) for part in (0, 1)}
    fact("produced", client_id="kw-so-producer", topic=t, offsets=offs)

    import harness
    env = dict(os.environ, KWIRE_FACT_T0=str(time.monotonic() - harness._START))
    child = subprocess.Popen([sys.executable, __file__, "zombie-member", "--bootstrap", a.bootstrap,
                              "--topic", t], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=env)

    def relay(until=None):
        """Copies the child's FACT lines to our stdout until `until` (or its end)."""
        while True:
            line = child.stdout.readline()
            if not line:
                return False
            if until is not None and line.strip() == until:
                return True
            if line.startswith("FACT "):
                print(line, end="", flush=True)

    try:
        if not relay("READY"):
            raise RuntimeError(f"kw-so-1 exited early ({child.wait()})")
        os.kill(child.pid, signal.SIGSTOP)
        fact("stopped", client_id="kw-so-1", signal="SIGSTOP")
        time.sleep(9.0)

        m2 = Member(a, "kw-so-2", "kw-so", "range", False)
        pump([m2], lambda: m2.assigned == {0, 1}, "kw-so-2: owns [0, 1]")
        offs = {str(part): produce_one_by_one(prod, "kw-so-producer", t, part, 2, first=4) for part in (0, 1)}
        fact("produced", client_id="kw-so-producer", topic=t, offsets=offs)
        pump([m2], lambda: m2.caught_up(6), "kw-so-2: at 6")
        m2.commit([0, 1], "owned")

        mock(a.bootstrap, "broker_rtt 1 500")
        child.stdin.write("commit\n")
        child.stdin.flush()
        os.kill(child.pid, signal.SIGCONT)
        fact("continued", client_id="kw-so-1", signal="SIGCONT")
        relay()
        if child.wait(TIMEOUT) != 0:
            raise RuntimeError(f"kw-so-1 failed ({child.returncode})")
        mock(a.bootstrap, "broker_rtt 1 0")
        m2.close()
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=["follower-fetch", "follower-bounce", "acks1-leader-change", "stale-commit",
                                       "commit-ahead", "txn", "offset-reset", "recreate", "stale-owner",
                                       "zombie-member", "lost-before-restart", "lost-after-restart",
                                       "produce-rejected", "old-produce-refused"])
    ap.add_argument("--out-topic")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group")
    ap.add_argument("--prefix", help="client id prefix")
    ap.add_argument("--protocol", choices=["range", "cooperative-sticky", "consumer"])
    ap.add_argument("--commit-on-revoke", action="store_true")
    ap.add_argument("--twice", action="store_true",
                    help="stale-commit: commit the lost partitions again, at once and later")
    a = ap.parse_args()
    if a.action == "zombie-member":
        import kafka
        fact("client", library="kafka-python", version=kafka.__version__, client_id="kw-so-1")
    else:
        v = version()
        fact("client", library="confluent-kafka", version=v if isinstance(v, str) else v[0],
             librdkafka=libversion()[0])
    {"follower-fetch": run_follower_fetch, "follower-bounce": run_follower_bounce,
     "acks1-leader-change": run_acks1_leader_change,
     "stale-commit": run_stale_commit, "commit-ahead": run_commit_ahead, "txn": run_txn,
     "offset-reset": run_offset_reset, "recreate": run_recreate, "stale-owner": run_stale_owner,
     "zombie-member": run_zombie_member, "lost-before-restart": run_lost_before_restart,
     "lost-after-restart": run_lost_after_restart, "produce-rejected": run_produce_rejected,
     "old-produce-refused": run_old_produce_refused}[a.action](a)
    log(f"alert_stories.py {a.action}: done")


if __name__ == "__main__":
    main()
