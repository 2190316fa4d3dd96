#!/usr/bin/env python3
"""Kafka over TLS on loopback: tansu listening in plaintext behind Debian's stunnel4, which terminates
TLS on the port tansu advertises, with a throwaway CA made here with openssl. Used to capture the
tests/fixtures/tls/ files (see their README) and meant for any test that needs a real TLS broker (the
live uprobe tests too).

  tls_broker.py up [--dir D] [--tls12] [--chacha]
      Start the broker pair, print one JSON line {"tls_port", "plain_port", "bootstrap", "ca", "dir"}
      and keep running until SIGINT/SIGTERM (then stop both). Clients connect to "bootstrap"
      (127.0.0.1:<tls_port>) with security_protocol=SSL and the CA file "ca".
  tls_broker.py capture --out DIR --name NAME [--tls12] [--chacha]
                        [--story weak-acks,recreate,group,aiokafka,node,stale]
      Start the pair, create the topics, tcpdump lo on BOTH ports in one run, run the stories with
      kafka-python / aiokafka over TLS writing a key log (SSLContext.keylog_filename), or kafkajs under
      `node --tls-keylog` (story node; kafkajs in .tools/node/node_modules), then write
      NAME.tls.pcap (client <-> stunnel, TLS), NAME.keylog, NAME.plain.pcap (stunnel <-> tansu,
      plaintext) and NAME.facts.json (FACT lines, versions, ports) into DIR.
  tls_broker.py story NAME --bootstrap B --ca CA
      Run one story against a running TLS broker (its topics created), printing its FACT lines; no
      capture, no key log (cargo xtask tls-check runs `stale` with kwire's uprobes reading it).

From Python: `with TlsBroker(workdir, tls12=False, chacha=False) as b: b.bootstrap, b.ca, ...` and
`client_context(b.ca, keylog)` for an ssl.SSLContext.

--tls12 caps stunnel at TLS 1.2 (sslVersionMax) and makes the clients offer ECDHE-RSA-AES128-GCM-SHA256
only; --chacha makes stunnel offer TLS_CHACHA20_POLY1305_SHA256 only in TLS 1.3 (ciphersuites=), or,
with --tls12, ECDHE-RSA-CHACHA20-POLY1305. Without either, OpenSSL picks TLS 1.3 TLS_AES_256_GCM_SHA384.
"""

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TANSU = os.environ.get("KWIRE_TANSU", os.path.join(REPO, ".tools", "tansu", "tansu"))
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel") or "stunnel4"
TIMEOUT = 30.0

sys.path.insert(0, HERE)
from harness import Deadline, fact, log  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, log_path):
    d = Deadline(15, f"{what} listening on {port}")
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}); log:\n" + open(log_path).read()[-2000:])
        d.check()
        time.sleep(0.05)


def make_ca(d):
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost, signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=kwire test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return os.path.join(d, "ca.pem")


class TlsBroker:
    """tansu (plaintext, in-memory) on plain_port advertising tls_port; stunnel TLS tls_port -> plain_port."""

    def __init__(self, workdir, tls12=False, chacha=False):
        self.dir = workdir
        self.tls12 = tls12
        self.chacha = chacha
        self.procs = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.ca = make_ca(self.dir)
        self.plain_port, self.tls_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.tls_port}"
        tlog = os.path.join(self.dir, "tansu.log")
        env = {k: v for k, v in os.environ.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"}
        tansu = subprocess.Popen(
            [TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{self.plain_port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.tls_port}",
             "--storage-engine", "memory://tansu/"],
            stdout=open(tlog, "w"), stderr=subprocess.STDOUT, env=env)
        self.procs.append(tansu)
        wait_port(self.plain_port, tansu, "tansu", tlog)
        conf = os.path.join(self.dir, "stunnel.conf")
        slog = os.path.join(self.dir, "stunnel.log")
        lines = ["foreground = yes", "pid =", f"output = {slog}", "debug = 4", "[kafka]",
                 f"accept = 127.0.0.1:{self.tls_port}", f"connect = 127.0.0.1:{self.plain_port}",
                 f"cert = {os.path.join(self.dir, 'server.pem')}",
                 f"key = {os.path.join(self.dir, 'server.key')}"]
        if self.tls12:
            lines.append("sslVersionMax = TLSv1.2")
            if self.chacha:
                lines.append("ciphers = ECDHE-RSA-CHACHA20-POLY1305")
        elif self.chacha:
            lines.append("ciphersuites = TLS_CHACHA20_POLY1305_SHA256")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        st = subprocess.Popen([STUNNEL, conf], stdout=open(slog + ".out", "w"), stderr=subprocess.STDOUT)
        self.procs.append(st)
        wait_port(self.tls_port, st, "stunnel", slog + ".out")
        return self

    def describe(self):
        return {"tls_port": self.tls_port, "plain_port": self.plain_port, "bootstrap": self.bootstrap,
                "ca": self.ca, "dir": self.dir, "tls12": self.tls12, "chacha": self.chacha}

    def create_topic(self, name, partitions):
        subprocess.run([TANSU, "topic", "create", name, "--partitions", str(partitions), "--broker",
                        f"tcp://127.0.0.1:{self.plain_port}"], check=True, capture_output=True,
                       timeout=TIMEOUT)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


def client_context(ca, keylog=None, tls12=False, ciphers=None):
    """A client SSLContext trusting `ca`, appending its TLS secrets to `keylog` (NSS format)."""
    ctx = ssl.create_default_context(cafile=ca)
    if keylog:
        ctx.keylog_filename = keylog
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


# ------------------------------------------------------------------------------------------------
# Stories (kafka-python and aiokafka over TLS). Every record is its own request (flush per record),
# so offsets are exact and the alerts repeat from run to run.

def kp(a, client_id):
    return {"bootstrap_servers": [a.bootstrap], "client_id": client_id, "security_protocol": "SSL",
            "ssl_context": a.ctx}


def story_weak_acks(a):
    """kw-tls-acks1 (kafka-python, acks=1) writes 4 records to kw-tls, partitions 0 and 1."""
    from kafka import KafkaProducer
    p = KafkaProducer(**kp(a, "kw-tls-acks1"), acks=1, linger_ms=0, enable_idempotence=False)
    offsets = {}
    for i in range(4):
        md = p.send("kw-tls", value=f"kw-tls-acks1-{i}".encode(), partition=i % 2).get(TIMEOUT)
        p.flush(TIMEOUT)
        offsets.setdefault(md.partition, []).append(md.offset)
    p.close(TIMEOUT)
    fact("produced", client_id="kw-tls-acks1", topic="kw-tls", acks="1",
         offsets={str(k): v for k, v in sorted(offsets.items())})


def story_group(a):
    """kw-tls-consumer (kafka-python, group kw-tls-group) reads what kw-tls holds and commits."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(**kp(a, "kw-tls-consumer"), group_id="kw-tls-group", enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000)
    c.subscribe(["kw-tls"])
    pos, n, d = {}, 0, Deadline(TIMEOUT, "4 records in kw-tls-group")
    while n < 4:
        d.check()
        for tp, recs in c.poll(timeout_ms=200).items():
            for r in recs:
                pos[tp.partition] = r.offset + 1
                n += 1
    c.commit({TopicPartition("kw-tls", p): OffsetAndMetadata(o, "", -1) for p, o in pos.items()})
    fact("committed", client_id="kw-tls-consumer", group="kw-tls-group",
         offsets={str(k): v for k, v in sorted(pos.items())})
    c.close()


def latest(a, client_id, topic):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(**kp(a, client_id), enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    hi = c.end_offsets([tp])[tp]
    fact("watermarks", client_id=client_id, topic=topic, partition=0, high=hi)
    c.close()


def produce_n(a, client_id, topic, n, first=0):
    from kafka import KafkaProducer
    p = KafkaProducer(**kp(a, client_id), acks="all", linger_ms=0, enable_idempotence=False)
    offs = [p.send(topic, value=f"{client_id}-{first + i}".encode(), partition=0).get(TIMEOUT).offset
            for i in range(n)]
    p.close(TIMEOUT)
    fact("produced", client_id=client_id, topic=topic, partition=0, offsets=offs)


def story_recreate(a):
    """kw-tlsrc written (5 records), watched (latest 5), deleted and re-created by kw-tlsrc-admin,
    written again (2 records), watched again (latest 2): the end of the log went backwards."""
    from kafka.admin import KafkaAdminClient, NewTopic
    t = "kw-tlsrc"
    produce_n(a, "kw-tlsrc-producer", t, 5)
    latest(a, "kw-tlsrc-watch", t)
    admin = KafkaAdminClient(**kp(a, "kw-tlsrc-admin"))
    admin.delete_topics([t], timeout_ms=10000)
    fact("deleted", client_id="kw-tlsrc-admin", topic=t)
    time.sleep(0.5)
    admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)], timeout_ms=10000)
    fact("created", client_id="kw-tlsrc-admin", topic=t, partitions=1)
    admin.close()
    produce_n(a, "kw-tlsrc-producer", t, 2, first=5)
    latest(a, "kw-tlsrc-watch", t)


def story_aiokafka(a):
    """kw-tls-aio (aiokafka, acks=1) writes 3 records to kw-tls partition 0."""
    from aiokafka import AIOKafkaProducer

    async def go():
        p = AIOKafkaProducer(bootstrap_servers=a.bootstrap, client_id="kw-tls-aio", acks=1,
                             security_protocol="SSL", ssl_context=a.ctx, linger_ms=0)
        await p.start()
        offs = []
        try:
            for i in range(3):
                md = await p.send_and_wait("kw-tls", f"kw-tls-aio-{i}".encode(), partition=0)
                offs.append(md.offset)
        finally:
            await p.stop()
        fact("produced", client_id="kw-tls-aio", topic="kw-tls", acks="1", partition=0, offsets=offs)

    asyncio.run(go())


STALE_TOPIC = "kw-tls-stale-topic"  # not the group's name: "kw-tls-stale-2" would read as the client
STALE_GROUP = "kw-tls-stale"


class KpMember:
    """One kafka-python member of group kw-tls-stale (range assignor: eager), polled from the script's
    single thread (kafka-python's heartbeats run in the background; a rebalance completes inside
    poll()). `position` is partition -> next offset to read; a partition given (back) to this member is
    forgotten until it reads again, a partition taken away keeps the position it had."""

    def __init__(self, a, client_id):
        from kafka import ConsumerRebalanceListener, KafkaConsumer
        from kafka.coordinator.assignors.range import RangePartitionAssignor
        me = self

        class Listener(ConsumerRebalanceListener):
            # Called on kafka-python's IO loop: only bookkeeping here, nothing that blocks.
            def on_partitions_revoked(self, revoked):
                gone = {tp.partition for tp in revoked}
                me.assigned -= gone
                fact("revoked", client_id=client_id, partitions=sorted(gone),
                     now_owns=sorted(me.assigned))

            def on_partitions_assigned(self, assigned):
                new = {tp.partition for tp in assigned}
                me.assigned |= new
                for p in new:
                    me.position[p] = None
                fact("assigned", client_id=client_id, partitions=sorted(new),
                     now_owns=sorted(me.assigned), member_id=me.member_id())

        self.client_id = client_id
        self.assigned = set()
        self.position = {}
        self.c = KafkaConsumer(**kp(a, client_id), group_id=STALE_GROUP, enable_auto_commit=False,
                               auto_offset_reset="earliest", session_timeout_ms=6000,
                               heartbeat_interval_ms=500, fetch_max_wait_ms=500,
                               partition_assignment_strategy=[RangePartitionAssignor])
        self.c.subscribe([STALE_TOPIC], listener=Listener())

    def member_id(self):
        return self.c.group_metadata().member_id

    def poll(self):
        # A member in a rebalance waits longer: kafka-python 3.0.12 drops a JoinGroup/SyncGroup round
        # that completes while its poll() is not running (the next poll() starts a new JoinGroup), and
        # with two members in one thread each poll() covers only part of the time.
        for tp, recs in self.c.poll(timeout_ms=10 if self.assigned else 300).items():
            for r in recs:
                self.position[tp.partition] = r.offset + 1

    def caught_up(self, offset):
        return bool(self.assigned) and all(self.position.get(p) == offset for p in self.assigned)

    def commit(self, parts, why):
        """Synchronous commit of this member's positions for `parts`, owned or not (kafka-python sends
        any offsets it is given with its current generation; the broker checks only that). The FACT
        has the per-partition error codes: 0 when the commit returns, the error's code when it
        raises (and then it raises)."""
        from kafka import TopicPartition
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata
        offsets = {p: self.position[p] for p in parts}
        meta = self.c.group_metadata()
        code = 0
        try:
            self.c.commit({TopicPartition(STALE_TOPIC, p): OffsetAndMetadata(o, "", -1)
                           for p, o in offsets.items()}, timeout_ms=int(TIMEOUT * 1000))
        except KafkaError as e:
            code = getattr(e, "errno", -1)
            raise
        finally:
            fact("committed", client_id=self.client_id, group=STALE_GROUP, why=why,
                 member_id=meta.member_id, generation=meta.generation_id,
                 offsets={str(p): o for p, o in sorted(offsets.items())},
                 errors={str(p): code for p in sorted(offsets)})

    def close(self):
        """Pause everything, let the last Fetch return (> fetch_max_wait_ms), then leave and close. A
        Fetch still in flight at close is answered by tansu to stunnel but never reaches the client, and
        the two legs of the capture would differ by that one response."""
        from kafka import TopicPartition
        self.c.pause(*[TopicPartition(STALE_TOPIC, p) for p in sorted(self.assigned)])
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            self.c.poll(timeout_ms=50)
        self.c.close(autocommit=False)
        fact("closed", client_id=self.client_id)


def pump(members, until, what, timeout=TIMEOUT):
    d = Deadline(timeout, what)
    while not until():
        d.check()
        for m in members:
            m.poll()


def story_stale(a):
    """Commit after revoke (the confluent-kafka story of alert_stories.py `run_stale_commit`, with
    kafka-python over TLS): group kw-tls-stale on the 4 partitions of kw-tls-stale-topic, range (eager).

    1. kw-tls-stale-producer (acks=all, one record per request) writes 4 records per partition;
       kw-tls-stale-1 joins alone, owns 0-3, reads them, commits 4.
    2. 2 more per partition; member 1 reads them (position 6), does not commit.
    3. kw-tls-stale-2 joins: rebalance (tansu holds a JoinGroup for half the session timeout: seconds).
       Member 1 keeps two partitions, loses two to member 2.
    4. 1 more per partition; both read to 7 (from the committed 4) and commit 7 for what they own.
    5. THE BUG: member 1 commits its old positions (6) for the two partitions it lost, explicitly;
       tansu accepts (error 0): member 2's committed 7 is rewound to 6.
    6. member 2 closes (leaves); member 1 gets every partition back, closes.
    """
    from kafka import KafkaProducer
    everything = set(range(4))
    prod = KafkaProducer(**kp(a, "kw-tls-stale-producer"), acks="all", linger_ms=0,
                         enable_idempotence=False)
    sent = [0]

    def produce_round(per_partition):
        offs = {}
        for _ in range(per_partition):
            for part in sorted(everything):
                md = prod.send(STALE_TOPIC, value=f"kw-tls-stale-producer-{sent[0]}".encode(),
                               partition=part).get(TIMEOUT)
                prod.flush(TIMEOUT)
                offs.setdefault(str(part), []).append(md.offset)
                sent[0] += 1
        fact("produced", client_id="kw-tls-stale-producer", topic=STALE_TOPIC, acks="all",
             per_partition=per_partition, offsets=offs)

    produce_round(4)
    m1 = KpMember(a, "kw-tls-stale-1")
    pump([m1], lambda: m1.assigned == everything and m1.caught_up(4), "member 1: assignment + 4")
    m1.commit(sorted(m1.assigned), "step1")

    produce_round(2)
    pump([m1], lambda: m1.caught_up(6), "member 1: offset 6")

    m2 = KpMember(a, "kw-tls-stale-2")
    pump([m1, m2], lambda: m1.assigned and m2.assigned and (m1.assigned | m2.assigned) == everything
         and not (m1.assigned & m2.assigned), "rebalance with 2 members", 2 * TIMEOUT)
    lost = sorted(everything - m1.assigned)
    fact("rebalanced", group=STALE_GROUP, member1_owns=sorted(m1.assigned),
         member2_owns=sorted(m2.assigned), member1_lost=lost, member1_id=m1.member_id(),
         member2_id=m2.member_id(), stale_positions={str(p): m1.position[p] for p in lost})

    produce_round(1)
    pump([m1, m2], lambda: m1.caught_up(7) and m2.caught_up(7), "both members: offset 7")
    m1.commit(sorted(m1.assigned), "step4")
    m2.commit(sorted(m2.assigned), "step4")

    m1.commit(lost, "stale")

    m2.close()
    pump([m1], lambda: m1.assigned == everything, "member 1 owns everything again", 2 * TIMEOUT)
    m1.close()
    prod.close(TIMEOUT)


NODE = os.environ.get("KWIRE_NODE", shutil.which("node") or "node")
NODE_MODULES = os.path.join(REPO, ".tools", "node", "node_modules")


def story_node(a):
    """kw-tls-node (kafkajs under `node --tls-keylog`, acks=1) writes 4 records to kw-tls-node,
    partitions 0 and 1; kw-tls-node-consumer reads them in group kw-tls-node-group and commits
    (tests/harness/kafkajs_client.js). Node writes its own TLS secrets to the same key log."""
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    r = subprocess.run([NODE, f"--tls-keylog={a.keylog}", os.path.join(HERE, "kafkajs_client.js"),
                        "--bootstrap", a.bootstrap, "--ca", a.ca, "--topic", "kw-tls-node",
                        "--group", "kw-tls-node-group"],
                       capture_output=True, text=True, env=env, timeout=4 * TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError(f"kafkajs_client.js failed ({r.returncode}):\n{r.stderr[-2000:]}")
    for line in r.stdout.splitlines():
        if line.startswith("FACT "):
            print(line, flush=True)


def node_versions():
    node = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(NODE_MODULES, "kafkajs", "package.json")) as f:
        return {"node": node, "kafkajs": json.load(f)["version"]}


STORIES = {"weak-acks": story_weak_acks, "group": story_group, "recreate": story_recreate,
           "aiokafka": story_aiokafka, "node": story_node, "stale": story_stale}
TOPICS = {"weak-acks": [("kw-tls", 2)], "group": [("kw-tls", 2)], "recreate": [("kw-tlsrc", 1)],
          "aiokafka": [("kw-tls", 2)], "node": [("kw-tls-node", 2)],
          "stale": [(STALE_TOPIC, 4)]}


def capture(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="kwire-tls-")
    keylog = os.path.join(out, f"{args.name}.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    stories = args.story.split(",")
    facts = []
    with TlsBroker(work, tls12=args.tls12, chacha=args.chacha) as b:
        for s in stories:
            for t, n in TOPICS[s]:
                try:
                    b.create_topic(t, n)
                except subprocess.CalledProcessError:
                    pass  # created by an earlier story
        raw = os.path.join(work, "both.pcap")
        dump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-s", "0", "-B", "131072", "-U", "--immediate-mode", "-w", raw,
             f"tcp port {b.tls_port} or tcp port {b.plain_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        a = argparse.Namespace(bootstrap=b.bootstrap, ca=b.ca, keylog=keylog,
                               ctx=client_context(b.ca, keylog, tls12=args.tls12,
                                                  ciphers=("ECDHE-RSA-AES128-GCM-SHA256"
                                                           if args.tls12 and not args.chacha else None)))
        t0 = time.monotonic()
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            for s in stories:
                log(f"story {s}")
                STORIES[s](a)
        facts = [json.loads(x[5:]) for x in said.getvalue().splitlines() if x.startswith("FACT ")]
        took = round(time.monotonic() - t0, 1)
        time.sleep(1.0)
        dump.send_signal(signal.SIGINT)
        _, err = dump.communicate(timeout=10)
        err = err.decode()
        m = re.search(r"(\d+) packets dropped by kernel", err)
        if not m or m.group(1) != "0":
            raise RuntimeError(f"tcpdump dropped packets (or said nothing): {err}")
        desc = b.describe()
    for leg, port in (("tls", desc["tls_port"]), ("plain", desc["plain_port"])):
        subprocess.run(["tcpdump", "-r", raw, "-w", os.path.join(out, f"{args.name}.{leg}.pcap"),
                        f"tcp port {port}"], check=True, capture_output=True)
    import kafka
    import aiokafka
    meta = {"name": args.name, "stories": stories, "seconds": took, "tls12": args.tls12,
            "chacha": args.chacha, "tls_port": desc["tls_port"], "plain_port": desc["plain_port"],
            "openssl": ssl.OPENSSL_VERSION, "kafka_python": kafka.__version__,
            "aiokafka": aiokafka.__version__, "tcpdump": err.strip().splitlines()[-3:],
            # `stunnel -version` prints "Initializing inetd mode configuration" first: keep the
            # lines that name stunnel and OpenSSL.
            "stunnel": [l for l in subprocess.run([STUNNEL, "-version"], capture_output=True,
                                                  text=True).stderr.splitlines()
                        if l.startswith(("stunnel ", "Compiled with", "Running"))],
            "command": "tests/harness/tls_broker.py " + " ".join(sys.argv[1:]), "facts": facts}
    if "node" in stories:
        meta.update(node_versions())
    with open(os.path.join(out, f"{args.name}.facts.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(meta))


def story(args):
    """One story against a running TLS broker (`--bootstrap`, `--ca`), no capture: for live checks
    (`cargo xtask tls-check` runs `stale` with kwire's uprobes reading it). Its topics must exist."""
    a = argparse.Namespace(bootstrap=args.bootstrap, ca=args.ca, keylog=None,
                           ctx=client_context(args.ca))
    STORIES[args.name](a)


def up(args):
    work = args.dir or tempfile.mkdtemp(prefix="kwire-tls-")
    b = TlsBroker(work, tls12=args.tls12, chacha=args.chacha).start()
    print(json.dumps(b.describe()), flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop and all(p.poll() is None for p in b.procs):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        b.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up")
    u.add_argument("--dir")
    c = sub.add_parser("capture")
    c.add_argument("--out", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--story", default="weak-acks,group,recreate,aiokafka")
    for p in (u, c):
        p.add_argument("--tls12", action="store_true")
        p.add_argument("--chacha", action="store_true")
    s = sub.add_parser("story")
    s.add_argument("name", choices=sorted(STORIES))
    s.add_argument("--bootstrap", required=True)
    s.add_argument("--ca", required=True)
    args = ap.parse_args()
    {"up": up, "capture": capture, "story": story}[args.cmd](args)


if __name__ == "__main__":
    main()
