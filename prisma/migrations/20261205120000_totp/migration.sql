-- Authenticator apps (RFC 6238): one row per user. The confirmed secret and a pending
-- enrolment's secret are both AES-256-GCM ciphertexts (src/lib/secrets.ts); last_step makes
-- every code single-use through one conditional UPDATE.
CREATE TABLE "totp_factors" (
    "user_id" TEXT NOT NULL,
    "secret_cipher" TEXT,
    "enabled_at" TIMESTAMPTZ(3),
    "last_step" BIGINT,
    "pending_id" TEXT,
    "pending_secret_cipher" TEXT,
    "pending_expires_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "totp_factors_pkey" PRIMARY KEY ("user_id")
);

CREATE UNIQUE INDEX "totp_factors_pending_id_key" ON "totp_factors"("pending_id");

ALTER TABLE "totp_factors" ADD CONSTRAINT "totp_factors_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
