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
