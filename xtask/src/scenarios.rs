//! The capture scenarios: which broker, which topics, which client-script runs, in order.
//!
//! Everything is fixed (client ids, topics, record counts, partitions) so that a capture can be
//! regenerated and the counts in tests/fixtures/harness/README.md stay exact. Each step runs one
//! script from tests/harness/ with these arguments plus `--bootstrap <the broker's list>`.

use crate::broker::BrokerKind;

pub struct Scenario {
    pub name: &'static str,
    pub broker: BrokerKind,
    /// (topic, partitions), created before the capture starts
    pub topics: &'static [(&'static str, u32)],
    pub steps: &'static [Step],
    pub summary: &'static str,
}

pub struct Step {
    pub script: &'static str,
    pub args: &'static [&'static str],
    pub timeout_s: u64,
}

const CONFLUENT: &str = "confluent_client.py";
const KAFKA_PYTHON: &str = "kafka_python_client.py";
const AIOKAFKA: &str = "aiokafka_client.py";
/// Not a script: xtask restarts the broker on the same port (tansu, in-memory storage: it comes back
/// empty) and creates the scenario's topics again.
pub const RESTART_BROKER: &str = "@restart-broker";
/// Stories that make kwire's alerts happen (faults injected mid-story through the mock's control socket).
const STORIES: &str = "alert_stories.py";

macro_rules! step {
    ($script:expr, $timeout:expr; $($arg:expr),* $(,)?) => {
        Step { script: $script, args: &[$($arg),*], timeout_s: $timeout }
    };
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "produce-acks-librdkafka-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-acks", 3)],
        steps: &[
            step!(CONFLUENT, 60; "produce", "--topic", "kw-acks", "--partitions", "3", "--count", "6", "--acks", "0", "--client-id", "kw-acks0"),
            step!(CONFLUENT, 60; "produce", "--topic", "kw-acks", "--partitions", "3", "--count", "6", "--acks", "1", "--client-id", "kw-acks1"),
            step!(CONFLUENT, 60; "produce", "--topic", "kw-acks", "--partitions", "3", "--count", "6", "--acks", "all", "--client-id", "kw-acksall"),
        ],
        summary: "confluent-kafka producers with acks=0, 1 and all against the librdkafka mock cluster \
                  (3 brokers); 6 records each, one record per Produce request, record i to partition i % 3",
    },
    Scenario {
        name: "produce-compression-librdkafka-tansu",
        broker: BrokerKind::Tansu,
        topics: &[("kw-comp", 1)],
        steps: &[
            step!(CONFLUENT, 60; "produce", "--topic", "kw-comp", "--partitions", "1", "--count", "4", "--acks", "all", "--batch", "--value-size", "64", "--compression", "none", "--client-id", "kw-comp-none"),
            step!(CONFLUENT, 60; "produce", "--topic", "kw-comp", "--partitions", "1", "--count", "4", "--acks", "all", "--batch", "--value-size", "64", "--compression", "gzip", "--client-id", "kw-comp-gzip"),
            step!(CONFLUENT, 60; "produce", "--topic", "kw-comp", "--partitions", "1", "--count", "4", "--acks", "all", "--batch", "--value-size", "64", "--compression", "snappy", "--client-id", "kw-comp-snappy"),
            step!(CONFLUENT, 60; "produce", "--topic", "kw-comp", "--partitions", "1", "--count", "4", "--acks", "all", "--batch", "--value-size", "64", "--compression", "lz4", "--client-id", "kw-comp-lz4"),
            step!(CONFLUENT, 60; "produce", "--topic", "kw-comp", "--partitions", "1", "--count", "4", "--acks", "all", "--batch", "--value-size", "64", "--compression", "zstd", "--client-id", "kw-comp-zstd"),
            step!(CONFLUENT, 60; "consume", "--topic", "kw-comp", "--partitions", "1", "--count", "20", "--client-id", "kw-comp-consumer"),
        ],
        summary: "confluent-kafka producers, one per codec (none, gzip, snappy, lz4, zstd), each sending one \
                  batch of 4 records (64-byte values) with acks=all to tansu; then a consumer reads the 20 back",
    },
    Scenario {
        name: "produce-kafka-python-tansu",
        broker: BrokerKind::Tansu,
        topics: &[("kw-py", 3)],
        steps: &[
            step!(KAFKA_PYTHON, 60; "produce", "--topic", "kw-py", "--partitions", "3", "--count", "6", "--acks", "0", "--client-id", "kw-py-acks0"),
            step!(KAFKA_PYTHON, 60; "produce", "--topic", "kw-py", "--partitions", "3", "--count", "6", "--acks", "1", "--client-id", "kw-py-acks1"),
            step!(KAFKA_PYTHON, 60; "produce", "--topic", "kw-py", "--partitions", "3", "--count", "6", "--acks", "all", "--client-id", "kw-py-acksall"),
            step!(KAFKA_PYTHON, 60; "consume", "--topic", "kw-py", "--count", "18", "--group", "kw-py-group", "--client-id", "kw-py-consumer"),
        ],
        summary: "kafka-python producers with acks=0, 1 and all against tansu (6 records each, one per \
                  request), then a kafka-python consumer in group kw-py-group reads all 18 and commits",
    },
    Scenario {
        name: "produce-aiokafka-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-aio", 3)],
        steps: &[
            step!(AIOKAFKA, 60; "produce", "--topic", "kw-aio", "--partitions", "3", "--count", "6", "--acks", "0", "--client-id", "kw-aio-acks0"),
            step!(AIOKAFKA, 60; "produce", "--topic", "kw-aio", "--partitions", "3", "--count", "6", "--acks", "1", "--client-id", "kw-aio-acks1"),
            step!(AIOKAFKA, 60; "produce", "--topic", "kw-aio", "--partitions", "3", "--count", "6", "--acks", "all", "--client-id", "kw-aio-acksall"),
            step!(AIOKAFKA, 60; "consume", "--topic", "kw-aio", "--count", "18", "--group", "kw-aio", "--client-id", "kw-aio-consumer"),
        ],
        summary: "aiokafka producers with acks=0, 1 and all against the librdkafka mock cluster (6 records \
                  each, one per request), then an aiokafka consumer in group kw-aio reads all 18 and commits",
    },
    Scenario {
        name: "group-eager-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-eager", 4)],
        steps: &[step!(CONFLUENT, 120; "group", "--topic", "kw-eager", "--partitions", "4", "--group", "kw-eager", "--strategy", "range", "--client-id-prefix", "kw-eager")],
        summary: "two confluent-kafka consumers in group kw-eager (range, eager rebalancing) on a 4-partition \
                  topic: join, commit, second member joins, both commit, second member leaves, commit again",
    },
    Scenario {
        name: "group-cooperative-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-coop", 4)],
        steps: &[step!(CONFLUENT, 120; "group", "--topic", "kw-coop", "--partitions", "4", "--group", "kw-coop", "--strategy", "cooperative-sticky", "--commit-on-revoke", "--client-id-prefix", "kw-coop")],
        summary: "the same story with cooperative-sticky (incremental rebalancing) in group kw-coop, members \
                  committing in their on_revoke callback",
    },
    Scenario {
        name: "group-kafka-python-tansu",
        broker: BrokerKind::Tansu,
        topics: &[("kw-pygroup", 4)],
        steps: &[step!(KAFKA_PYTHON, 180; "group", "--topic", "kw-pygroup", "--partitions", "4", "--group", "kw-pygroup", "--client-id-prefix", "kw-pygroup")],
        summary: "the same story with two kafka-python consumers (Java-like eager group logic, range) in group \
                  kw-pygroup against tansu, committing (async) in on_partitions_revoked",
    },
    Scenario {
        name: "listoffsets-metadata-tansu",
        broker: BrokerKind::Tansu,
        topics: &[("kw-lo", 3)],
        steps: &[
            step!(CONFLUENT, 60; "produce", "--topic", "kw-lo", "--partitions", "3", "--counts", "1,2,3", "--acks", "all", "--client-id", "kw-lo-producer"),
            step!(CONFLUENT, 60; "offsets", "--topic", "kw-lo", "--partitions", "3", "--client-id", "kw-lo-rdkafka"),
            step!(KAFKA_PYTHON, 60; "offsets", "--topic", "kw-lo", "--partitions", "3", "--client-id", "kw-lo-py"),
        ],
        summary: "1, 2 and 3 records (one per batch) to partitions 0, 1, 2 of kw-lo on tansu; then confluent-kafka \
                  and kafka-python ask Metadata for all topics and ListOffsets earliest, latest and by timestamp",
    },
    Scenario {
        name: "follower-fetch-hwm-regression-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-ff", 2)],
        steps: &[step!(STORIES, 90; "follower-fetch", "--topic", "kw-ff")],
        summary: "KIP-392 follower fetching from a lagging replica on the librdkafka mock: broker 1 leads \
                  kw-ff, broker 3 (follower, high watermark held at 4) is named preferred read replica; \
                  kw-ff-reader consumed 10 records from the leader, then is told HWM 4 by the follower \
                  (critical); kw-ff-tail starting at the end is told 10 then 4 (warning)",
    },
    Scenario {
        name: "follower-fetch-bounce-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-fb", 1)],
        steps: &[step!(STORIES, 90; "follower-bounce", "--topic", "kw-fb")],
        summary: "KIP-392 bounce on the librdkafka mock: kw-fb-reader consumed 10 records from leader 1; \
                  follower 3 lags at 4 while the leader's end is 12; the leader names replica 3, the \
                  follower answers OFFSET_OUT_OF_RANGE with high watermark 4, librdkafka reverts to the \
                  leader: told 12, 4, 12, 4, ... for 5 s, then 12, 3, ... for 3 s; the follower catches \
                  up and serves records 10 and 11",
    },
    Scenario {
        name: "acks1-leader-change-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-lc", 1)],
        steps: &[step!(STORIES, 90; "acks1-leader-change", "--topic", "kw-lc")],
        summary: "an acks=1 and an acks=all confluent-kafka producer write 10 records each to kw-lc \
                  partition 0, in turns, one per request; after 5 the mock moves the leader from broker 1 \
                  to 2 (NOT_LEADER_OR_FOLLOWER, retried on the new leader)",
    },
    Scenario {
        name: "commit-after-revoke-cooperative-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-carc", 4)],
        steps: &[step!(STORIES, 120; "stale-commit", "--topic", "kw-carc", "--group", "kw-carc", "--prefix", "kw-carc", "--protocol", "cooperative-sticky", "--commit-on-revoke")],
        summary: "two confluent-kafka members in cooperative-sticky group kw-carc; after the rebalance hands \
                  two partitions from kw-carc-1 to kw-carc-2 (hand-off commit in on_revoke) and both committed \
                  7, kw-carc-1 commits its old positions (6) for the two partitions it lost: accepted",
    },
    Scenario {
        name: "commit-after-revoke-eager-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-care", 4)],
        steps: &[step!(STORIES, 120; "stale-commit", "--topic", "kw-care", "--group", "kw-care", "--prefix", "kw-care", "--protocol", "range")],
        summary: "the same story with the range assignor (eager rebalancing) in group kw-care: after the \
                  rebalance and both members' commits of 7, kw-care-1 commits 6 for the two partitions it lost",
    },
    Scenario {
        name: "commit-after-revoke-kip848-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-cark", 4)],
        steps: &[step!(STORIES, 180; "stale-commit", "--topic", "kw-cark", "--group", "kw-cark", "--prefix", "kw-cark", "--protocol", "consumer", "--commit-on-revoke")],
        summary: "the same story in a KIP-848 group (group.protocol=consumer, ConsumerGroupHeartbeat, the \
                  mock's range target assignment) kw-cark: kw-cark-1 commits 6 for the two partitions it lost",
    },
    Scenario {
        name: "commit-after-revoke-twice-eager-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-c2e", 4)],
        steps: &[step!(STORIES, 120; "stale-commit", "--topic", "kw-c2e", "--group", "kw-c2e", "--prefix", "kw-c2e", "--protocol", "range", "--twice")],
        summary: "the eager (range) stale-commit story in group kw-c2e, with kw-c2e-1 committing the two \
                  partitions it lost three times: 6 (rewinds kw-c2e-2's 7), 6 again at once (a repeat), then, \
                  after kw-c2e-2 committed 9, 5 (rewinds 9): all accepted",
    },
    Scenario {
        name: "commit-after-revoke-twice-cooperative-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-c2c", 4)],
        steps: &[step!(STORIES, 150; "stale-commit", "--topic", "kw-c2c", "--group", "kw-c2c", "--prefix", "kw-c2c", "--protocol", "cooperative-sticky", "--commit-on-revoke", "--twice")],
        summary: "the same in cooperative-sticky group kw-c2c, with the hand-off commit in on_revoke (quiet): \
                  kw-c2c-1 commits its two lost partitions 6, 6 again, then 5 after kw-c2c-2 committed 9",
    },
    Scenario {
        name: "commit-ahead-and-regression-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-ca", 1)],
        steps: &[step!(STORIES, 90; "commit-ahead", "--topic", "kw-ca")],
        summary: "kw-ca-consumer (group kw-ca) reads 6 records and commits 6; paused, it commits the end \
                  offset 10 (ListOffsets latest) although served only up to 6 (4 records skipped), then \
                  commits 6 again (committed offset moves back by 4)",
    },
    Scenario {
        name: "txn-offset-commit-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-txin", 2), ("kw-txout", 1)],
        steps: &[step!(STORIES, 120; "txn", "--topic", "kw-txin", "--out-topic", "kw-txout")],
        summary: "consume-transform-produce with transactions: kw-tx-1 (group kw-tx) reads kw-txin, \
                  kw-tx-producer (transactional.id kw-tx) writes kw-txout and commits offsets with \
                  TxnOffsetCommit, twice cleanly; after kw-tx-2 joins and takes one input partition, a \
                  third transaction still commits kw-tx-1's old positions for both, a fourth commits 2 beyond \
                  kw-tx-1's position on the partition it kept",
    },
    Scenario {
        name: "offset-reset-jump-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-orj", 1)],
        steps: &[step!(STORIES, 90; "offset-reset", "--topic", "kw-orj")],
        summary: "kw-orj-consumer (auto.offset.reset=latest, client.rack=rack-c) assigned at offset 0 reads \
                  from follower 3 whose log starts at 4: OFFSET_OUT_OF_RANGE, reset to the end (10), records \
                  0-9 skipped",
    },
    Scenario {
        name: "listoffsets-recreate-tansu",
        broker: BrokerKind::Tansu,
        topics: &[("kw-rc", 1)],
        steps: &[step!(STORIES, 90; "recreate", "--topic", "kw-rc")],
        summary: "5 records to kw-rc on tansu (one per batch); kw-rc-watch asks ListOffsets (latest 5), \
                  kw-rc-consumer (group kw-rc) reads and commits 5; kw-rc-admin deletes and re-creates the \
                  topic, 2 records are written; kw-rc-watch and kw-rc-consumer ask again: latest 2",
    },
    Scenario {
        name: "stale-owner-commit-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-so", 2)],
        steps: &[step!(STORIES, 120; "stale-owner", "--topic", "kw-so")],
        summary: "split brain: kafka-python member kw-so-1 owns both partitions of kw-so, is stopped \
                  (SIGSTOP) past its 6 s session timeout; confluent-kafka kw-so-2 takes both over and commits \
                  6; woken, kw-so-1 commits 4 as the owner it still believes it is (rejected: unknown member)",
    },
    Scenario {
        name: "acked-lost-restart-tansu",
        broker: BrokerKind::Tansu,
        topics: &[("kw-rl", 1)],
        steps: &[
            step!(STORIES, 60; "lost-before-restart", "--topic", "kw-rl"),
            step!(RESTART_BROKER, 30;),
            step!(STORIES, 60; "lost-after-restart", "--topic", "kw-rl"),
        ],
        summary: "kw-rl-producer writes 5 records to kw-rl on tansu with acks=all (offsets 0-4), kw-rl-watch \
                  asks ListOffsets (latest 5); tansu (in-memory storage) is restarted on the same port and \
                  kw-rl re-created (`tansu topic create`); kw-rl-watch asks again (latest 0) and \
                  kw-rl-producer writes 2 records, acknowledged at offsets 0-1 again",
    },
    Scenario {
        name: "produce-rejected-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-pr", 1)],
        steps: &[step!(STORIES, 90; "produce-rejected", "--topic", "kw-pr")],
        summary: "acks=all producers without idempotence on the librdkafka mock: kw-pr-retry's first Produce \
                  is answered NOT_ENOUGH_REPLICAS and re-sent (acknowledged at 0); kw-pr-big's is answered \
                  MESSAGE_TOO_LARGE, the application does not re-send it, its next record is acknowledged at 1",
    },
    Scenario {
        name: "old-produce-refused-mock",
        broker: BrokerKind::Mock(3),
        topics: &[("kw-op", 1)],
        steps: &[step!(STORIES, 150; "old-produce-refused", "--topic", "kw-op")],
        summary: "the mock accepts Produce v8-v10 only; kw-old-producer (kafka-python pinned to 2.1: Produce v7, \
                  acks=all, retries=0) sends one record: the mock closes the connection without an answer, \
                  the send fails and is not retried; 65 s later kw-old-watch asks Metadata",
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

pub fn names() -> String {
    SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}
