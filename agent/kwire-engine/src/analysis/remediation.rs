//! What to do about an alert: the `remediation` field of every alert line, one short paragraph an
//! on-call engineer can act on, specific to the client library when the client said which it is
//! (ApiVersions v3+ `client_software_name`), and the `client_software` the advice was chosen for. The
//! long form of each is a section of docs/alerts.md.
//!
//! Easy to get wrong: the advice must fit the evidence of the kind, not guess beyond it; the library is
//! only what the client announced (absent before ApiVersions v3 or when the capture missed it), so the
//! generic advice must stand on its own.

use crate::output::alert::AlertKind;

/// Client library families whose configuration names differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    Librdkafka,
    Java,
    KafkaPython,
    Aiokafka,
    KafkaJs,
    FranzGo,
    Sarama,
    Unknown,
}

impl Library {
    /// The family of an announced `client_software_name` (e.g. `confluent-kafka-python`,
    /// `librdkafka`, `apache-kafka-java`, `kafka-python`, `aiokafka`, `kafkajs`, `kgo`, `sarama`).
    pub fn of(software_name: Option<&str>) -> Library {
        let Some(n) = software_name.map(str::to_ascii_lowercase) else {
            return Library::Unknown;
        };
        if n.contains("librdkafka") || n.starts_with("confluent-kafka") || n.contains("rdkafka") {
            Library::Librdkafka
        } else if n.contains("java") {
            Library::Java
        } else if n.contains("aiokafka") {
            Library::Aiokafka
        } else if n.contains("kafka-python") {
            Library::KafkaPython
        } else if n.contains("kafkajs") {
            Library::KafkaJs
        } else if n.contains("franz") || n == "kgo" {
            Library::FranzGo
        } else if n.contains("sarama") {
            Library::Sarama
        } else {
            Library::Unknown
        }
    }
}

/// The remediation text for an alert of `kind` raised on a client of library `lib`.
pub fn remediation(kind: AlertKind, lib: Library) -> String {
    let generic = match kind {
        AlertKind::ListOffsetsRegression => {
            "Check the partition's leader, leader epoch and ISR at that time (kafka-topics --describe, \
             broker logs for leader elections): a hand-off to a replica that was behind, an unclean \
             election (unclean.leader.election.enable must be false) or a follower read from a lagging \
             replica (client.rack with replica.selector.class) tells an older end of log. Producers: acks=all \
             with min.insync.replicas >= 2. Consumers that abort on it (Spark failOnDataLoss) should retry \
             after the leader settles; disable that check only with an idempotent sink."
        }
        AlertKind::CommitAfterRevoke => {
            "Commit only partitions the member owns: commit the revoked partitions' offsets inside the \
             revoke callback, before the rebalance completes, and drop any offsets buffered for them \
             afterwards (filter pending commits by the current assignment). The new owner's progress was \
             overwritten: check the fields records_reread / records_skipped and reset the group's offset \
             for this partition if records were skipped."
        }
        AlertKind::StaleOwnerCommit => {
            "Two members believed they owned this partition: the committing member had been evicted \
             (processing longer than max.poll.interval.ms, or a session timeout) and kept working. Stop \
             processing and committing when the assignment is lost, shorten batches or raise \
             max.poll.interval.ms, and check for duplicate or skipped records on this partition."
        }
        AlertKind::WeakAcks => {
            "Records acknowledged by the leader alone are lost if it fails before followers copy them: \
             produce with acks=all and idempotence, with min.insync.replicas >= 2 on the topic (and \
             replication factor >= 3). When critical, a leader changed while this producer wrote: compare \
             what it sent with what the topic holds around leader_change_ts."
        }
        AlertKind::CommitAheadOfFetch => {
            "The consumer committed past the records it was served: those records were skipped. Commit the \
             offset of the last processed record + 1, after processing, from the offsets the fetch \
             returned, and reset the group's offset to the served end if records must be read."
        }
        AlertKind::OffsetResetJump => {
            "After OFFSET_OUT_OF_RANGE the consumer jumped ahead (auto.offset.reset=latest): the records in \
             between were skipped. Use auto.offset.reset=earliest (or none, to fail loudly), and check \
             retention (retention.ms / retention.bytes) against the consumer's lag."
        }
        AlertKind::CommittedOffsetRegression => {
            "The group's committed offset moved back: records will be processed again. Make processing \
             idempotent, and find who committed the lower offset (member_id, client_id): a stale member, \
             a restarted job with an old checkpoint, or a manual offset reset."
        }
        AlertKind::AcknowledgedThenLost => {
            "Records the broker acknowledged are gone: re-send them from the producer's source \
             (offsets first_lost_offset..last_lost_offset, see producers) or restore them downstream. \
             When info, a client deleted the topic or its records on purpose (deleted_by_client_id): \
             check that it was meant to. acks=all lost: check the brokers for an unclean leader election \
             (unclean.leader.election.enable must be false), a broker that lost unflushed data \
             (replication factor 1, or min.insync.replicas 1 with a single replica in the ISR), storage \
             that does not persist (an in-memory broker restarted). acks=1 lost: produce with acks=all and \
             idempotence, min.insync.replicas >= 2, replication factor >= 3."
        }
        AlertKind::ProduceRejected => {
            "The broker refused (or never answered) these records and they were never acknowledged: the \
             application must handle the delivery error (log, dead-letter, re-send). For MESSAGE_TOO_LARGE / \
             RECORD_LIST_TOO_LARGE lower the producer's batch size or raise the topic's max.message.bytes; \
             for INVALID_RECORD / CORRUPT_MESSAGE check keys on compacted topics and the client's version; \
             for *_AUTHORIZATION_FAILED fix the ACLs; for retriable errors raise delivery.timeout.ms and \
             check the brokers (leader, ISR, min.insync.replicas)."
        }
        AlertKind::LogTruncated => {
            "The consumer had read records that no longer exist on the partition's leader (an unclean \
             leader election or a replica that lost unflushed data truncated the log): whatever processed \
             them downstream holds data the topic no longer has. Find which records (first_gone_offset.. \
             last_gone_offset) and reconcile downstream; on the brokers set \
             unclean.leader.election.enable=false and produce with acks=all, min.insync.replicas >= 2."
        }
    };
    let specific = match (kind, lib) {
        (AlertKind::CommitAfterRevoke | AlertKind::StaleOwnerCommit, Library::Librdkafka) => {
            " librdkafka: in the rebalance callback, on REVOKE commit (commit(offsets, asynchronous=False)) \
             before incremental_unassign()/unassign(); with enable.auto.commit keep \
             enable.auto.offset.store=false and store offsets only for assigned partitions."
        }
        (AlertKind::CommitAfterRevoke | AlertKind::StaleOwnerCommit, Library::Java) => {
            " Java client: commitSync the revoked partitions in ConsumerRebalanceListener.onPartitionsRevoked; \
             never pass offsets of partitions not in consumer.assignment() to commitAsync/commitSync."
        }
        (
            AlertKind::CommitAfterRevoke | AlertKind::StaleOwnerCommit,
            Library::KafkaPython | Library::Aiokafka,
        ) => {
            " kafka-python/aiokafka: commit in ConsumerRebalanceListener.on_partitions_revoked and filter \
             the offsets passed to commit() by consumer.assignment()."
        }
        (AlertKind::WeakAcks, Library::Librdkafka) => {
            " librdkafka: acks=all (request.required.acks=-1) and enable.idempotence=true."
        }
        (AlertKind::WeakAcks, Library::Java) => {
            " Java client: acks=all and enable.idempotence=true (the defaults since Kafka 3.0: something set them lower)."
        }
        (AlertKind::WeakAcks, Library::KafkaPython | Library::Aiokafka) => {
            " kafka-python/aiokafka: acks='all' (aiokafka: enable_idempotence=True)."
        }
        (AlertKind::WeakAcks, Library::KafkaJs) => {
            " kafkajs: producer.send({ acks: -1 }) with idempotent: true."
        }
        (AlertKind::WeakAcks, Library::FranzGo) => {
            " franz-go: kgo.RequiredAcks(kgo.AllISRAcks()) and keep idempotence on."
        }
        (AlertKind::WeakAcks, Library::Sarama) => {
            " sarama: Producer.RequiredAcks = sarama.WaitForAll and Producer.Idempotent = true."
        }
        (AlertKind::CommitAheadOfFetch, Library::Librdkafka) => {
            " librdkafka: enable.auto.offset.store=false and store_offsets(message) after processing each message."
        }
        (AlertKind::ProduceRejected, Library::Librdkafka) => {
            " librdkafka: check the delivery report callback's err (message.max.bytes, batch.size) and \
             keep enable.idempotence=true so retries keep order."
        }
        (AlertKind::ProduceRejected, Library::Java) => {
            " Java client: handle the exception in the send() callback; max.request.size and batch.size \
             bound what is sent."
        }
        (AlertKind::OffsetResetJump, Library::Librdkafka) => {
            " librdkafka: auto.offset.reset=earliest (or error)."
        }
        _ => "",
    };
    format!("{generic}{specific}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_families() {
        assert_eq!(
            Library::of(Some("confluent-kafka-python")),
            Library::Librdkafka
        );
        assert_eq!(Library::of(Some("apache-kafka-java")), Library::Java);
        assert_eq!(Library::of(Some("kafka-python")), Library::KafkaPython);
        assert_eq!(Library::of(Some("aiokafka")), Library::Aiokafka);
        assert_eq!(Library::of(None), Library::Unknown);
    }

    #[test]
    fn advice_is_specific_when_the_library_is_known() {
        let generic = remediation(AlertKind::CommitAfterRevoke, Library::Unknown);
        let rdk = remediation(AlertKind::CommitAfterRevoke, Library::Librdkafka);
        assert!(rdk.starts_with(&generic));
        assert!(rdk.contains("incremental_unassign"));
        assert!(!generic.contains("librdkafka"));
        for k in AlertKind::ALL {
            assert!(!remediation(k, Library::Unknown).is_empty());
        }
    }
}
