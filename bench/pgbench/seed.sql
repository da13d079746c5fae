-- Seed for the pgbench scripts next to this file, on a database the service's migrations were
-- applied to (see run.sh): 1,000 users, 40,000 open logins with one code delivery each,
-- 60,000 older events, and the bare route's counter table.
INSERT INTO users (id, email, password_hash) SELECT 'u' || g, 'u' || g || '@studio.example', 'x' FROM generate_series(1, 1000) g;
INSERT INTO otp_challenges (id, user_id, purpose, expires_at, code_hash, code_expires_at, channel, send_count, last_sent_at)
  SELECT 'c' || g, 'u' || (g % 1000 + 1), 'login', now() + interval '1 day', 'h' || g, now() + interval '1 day', 'sms', 1, now() FROM generate_series(1, 40000) g;
INSERT INTO deliveries (id, user_id, challenge_id, kind, channel, masked, provider, provider_id, status)
  SELECT 'd' || g, 'u' || (g % 1000 + 1), 'c' || g, 'code', 'sms', '+1 *** ***-0001', 'twilio', 'SM' || g, 'sent' FROM generate_series(1, 40000) g;
INSERT INTO security_events (id, user_id, type, details) SELECT gen_random_uuid()::text, 'u' || (g % 1000 + 1), 'challenge.sent', '{}' FROM generate_series(1, 60000) g;
CREATE TABLE bench_counters (id int PRIMARY KEY, used int NOT NULL DEFAULT 0);
INSERT INTO bench_counters (id) SELECT g FROM generate_series(1, 1000) g;
