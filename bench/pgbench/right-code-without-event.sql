\set n random(1, 40000)
WITH completed AS (
  UPDATE otp_challenges AS c SET completed_at = now()
    FROM users AS u
   WHERE c.id = 'c' || :n AND c.purpose = 'login' AND u.id = c.user_id
     AND c.closed_at IS NULL AND c.failed_attempts < 5 AND c.expires_at > now()
     AND c.code_hash = 'h' || :n AND c.code_expires_at > now()
     AND u.locked_at IS NULL AND (u.code_locked_until IS NULL OR u.code_locked_until <= now())
     AND c.channel = ANY(ARRAY['sms', 'voice', 'totp'])
  RETURNING c.user_id, c.channel, u.code_failures, 30 AS remember_device_days,
    (SELECT d.masked FROM deliveries AS d WHERE d.challenge_id = c.id AND d.kind = 'code' AND d.status <> 'failed' ORDER BY d.created_at DESC LIMIT 1) AS delivered_to
), forgotten AS (
  UPDATE users SET code_failures = 0 WHERE id IN (SELECT user_id FROM completed WHERE code_failures > 0)
)
SELECT user_id, channel, remember_device_days, delivered_to FROM completed;
