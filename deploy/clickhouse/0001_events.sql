-- 0001: the raw archive of accepted events, for analysts.
--
-- One row per accepted event. A re-delivered event has the same event_id and the
-- same business_date, so it lands in the same partition and collapses with its
-- twin when ClickHouse merges parts: count with FINAL (or GROUP BY event_id) when
-- exact numbers matter before a merge.
--
-- agent_id is the empty string for events that concern no agent (reference data).
-- payload is the event's canonical JSON, exactly as accepted.
CREATE TABLE IF NOT EXISTS events
(
    event_id String,
    event_type String,
    schema_version UInt16,
    occurred_at DateTime('UTC'),
    business_date Date,
    agent_id String,
    source String,
    payload String,
    ingested_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(business_date)
ORDER BY event_id;
