#!/bin/sh
# Creates the aqs topics when they do not exist yet, with the settings `aqs ingest` would use
# (POSIX sh: runs in the apache/kafka image).
#
#   AQS_KAFKA_BROKERS=kafka:9092 AQS_KAFKA_REPLICATION_FACTOR=3 deploy/kafka/create-topics.sh
#
# Event topics are the source of truth: no time- or size-based deletion (retention.ms=-1).
set -eu

: "${AQS_KAFKA_BROKERS:?set AQS_KAFKA_BROKERS to the bootstrap servers, e.g. kafka:9092}"
KAFKA_TOPICS=${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}
replication=${AQS_KAFKA_REPLICATION_FACTOR:-1}
# One replica may be down and the topic stays writable; never less than 1.
min_isr=$((replication > 1 ? replication - 1 : 1))

# create TOPIC PARTITIONS RETENTION_MS RETENTION_BYTES
create() {
    "$KAFKA_TOPICS" --bootstrap-server "$AQS_KAFKA_BROKERS" --create --if-not-exists \
        --topic "$1" --partitions "$2" --replication-factor "$replication" \
        --config cleanup.policy=delete \
        --config retention.ms="$3" \
        --config retention.bytes="$4" \
        --config min.insync.replicas="$min_isr"
}

# Agent events, keyed by agent_id: per-agent order, spread over the partitions.
create "${AQS_EVENTS_TOPIC:-aqs.events}" "${AQS_EVENTS_PARTITIONS:-12}" -1 -1
# Reference data (outlets, teams, targets, calendars): one partition, read whole by every projector.
create "${AQS_REFERENCE_TOPIC:-aqs.reference}" 1 -1 -1
# Refused input with its reasons, for inspection and replay: kept 90 days.
create "${AQS_DEAD_LETTER_TOPIC:-aqs.dead-letter}" 1 7776000000 -1

"$KAFKA_TOPICS" --bootstrap-server "$AQS_KAFKA_BROKERS" --describe \
    --topic "${AQS_EVENTS_TOPIC:-aqs.events}"
