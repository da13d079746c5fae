-- Wrong codes against a pending authenticator enrolment: the fifth ends the enrolment, as it
-- ends a phone verification, so its secret cannot be guessed one code at a time.
ALTER TABLE "totp_factors" ADD COLUMN "pending_failed_attempts" INTEGER NOT NULL DEFAULT 0;
