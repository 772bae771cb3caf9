-- An event's time is when it was appended, not when its transaction began. The appending transaction
-- holds its job's row lock when it inserts (that is what makes sequences gapless), so a clock read at
-- insert rises with the sequence; now() is the transaction's start, and a batch that began first but
-- took the lock second stamped later sequences with an earlier time (and every event of a long batch
-- with a time from before its first statement).
ALTER TABLE job_events ALTER COLUMN created_at SET DEFAULT clock_timestamp();
