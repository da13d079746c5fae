\set n random(1, 1000)
UPDATE bench_counters SET used = used + 1 WHERE id = :n::int AND used < 1000000000 RETURNING used;
