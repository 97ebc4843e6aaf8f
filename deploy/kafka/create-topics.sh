#!/bin/sh
# Creates the aqs topics when they do not exist yet, with the settings `aqs ingest` would use
# (POSIX sh: runs in the apache/kafka image).
#
#   AQS_KAFKA_BROKERS=kafka:9092 AQS_KAFKA_REPLICATION_FACTOR=3 deploy/kafka/create-topics.sh
#
# Event topics are the source of truth: no time- or size-based deletion (retention.ms=-1).
# Dead letters are bounded by age and bytes (AQS_DEAD_LETTER_MAX_AGE_DAYS, AQS_DEAD_LETTER_MAX_BYTES).
set -eu

: "${AQS_KAFKA_BROKERS:?set AQS_KAFKA_BROKERS to the bootstrap servers, e.g. kafka:9092}"
KAFKA_TOPICS=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}
replication=${AQS_KAFKA_REPLICATION_FACTOR:-1}
# One replica may be down and the topic stays writable; never less than 1.
min_isr=$((replication > 1 ? replication - 1 : 1))
dead_letter_days=${AQS_DEAD_LETTER_MAX_AGE_DAYS:-90}
dead_letter_bytes=${AQS_DEAD_LETTER_MAX_BYTES:-1073741824}
# Kafka deletes whole segments: a tenth of the bound keeps the topic near it (1 MiB to 1 GiB).
dead_letter_segment=$((dead_letter_bytes / 10))
if [ "$dead_letter_segment" -lt 1048576 ]; then dead_letter_segment=1048576; fi
if [ "$dead_letter_segment" -gt 1073741824 ]; then dead_letter_segment=1073741824; fi

# create TOPIC PARTITIONS RETENTION_MS RETENTION_BYTES [SEGMENT_BYTES]
create() {
    segment=""
    if [ -n "${5:-}" ]; then segment="--config segment.bytes=$5"; fi
    # shellcheck disable=SC2086 # $segment is empty or one option and its value
    "$KAFKA_TOPICS" --bootstrap-server "$AQS_KAFKA_BROKERS" --create --if-not-exists \
        --topic "$1" --partitions "$2" --replication-factor "$replication" \
        --config cleanup.policy=delete \
        --config retention.ms="$3" \
        --config retention.bytes="$4" \
        --config min.insync.replicas="$min_isr" $segment
}

# Agent events, keyed by agent_id (partition: murmur2 of it, as Kafka's Java client): per-agent
# order, spread over the partitions.
create "${AQS_EVENTS_TOPIC:-aqs.events}" "${AQS_EVENTS_PARTITIONS:-12}" -1 -1
# Events of no single agent (teams, outlets, targets above an agent, retractions naming no
# agent), unkeyed: one partition, read whole by every projector.
create "${AQS_REFERENCE_TOPIC:-aqs.reference}" 1 -1 -1
# What ingest and `aqs import` refused, with the reasons, keyed by event id: kept 90 days and
# 1 GiB by default.
create "${AQS_DEAD_LETTER_TOPIC:-aqs.dead-letter}" 1 "$((dead_letter_days * 86400000))" \
    "$dead_letter_bytes" "$dead_letter_segment"

"$KAFKA_TOPICS" --bootstrap-server "$AQS_KAFKA_BROKERS" --describe \
    --topic "${AQS_EVENTS_TOPIC:-aqs.events}"
