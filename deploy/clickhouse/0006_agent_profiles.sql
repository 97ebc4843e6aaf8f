-- 0006: agents' display names, folded by the projector from `agent_profile` events (and,
-- until an agent has a profile, from the name an `agent_joined_team` carries).
--
-- One row per agent: the name in force (`origin` says which event type gave it: the latest
-- `agent_profile`, else the latest join with a name) and the id of that event. A profile
-- retracted with nothing to fall back on leaves a tombstone (deleted = 1, empty name).
-- Read with FINAL and deleted = 0, like the other ledger tables. Only the dashboard's
-- roles allowed to see names read it; the KPI table carries ids only.
CREATE TABLE IF NOT EXISTS agent_profiles
(
    agent_id String,
    display_name String,
    origin String,
    event_id String,
    deleted UInt8,
    ver UInt64
)
ENGINE = ReplacingMergeTree(ver)
ORDER BY agent_id;
