-- 0004: ledger rows ClickHouse refused for their content, set aside by `aqs projector`.
--
-- When an insert into a ledger table fails because of what a row holds (a date outside
-- Date's range, a value the column type cannot take), the projector splits the insert until
-- the refused rows are alone, writes the others, and keeps each refused row here with the
-- error, instead of retrying it forever. `row` is the row as the projector printed it (its
-- version included), so writing the same row again after a restart adds nothing.
--
-- Read it to find the events behind a gap: the row names the agent and the date, and the
-- projector's quarantine (`aqs projector quarantined`) names the events it set aside.
CREATE TABLE IF NOT EXISTS ledger_dead_letters
(
    table_name String,
    row String,
    error String,
    dead_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY (table_name, row);
