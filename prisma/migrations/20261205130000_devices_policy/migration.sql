-- Remembered devices, per-organization policy and its daily SMS budget.

-- The grace period of a newly required user counts from the first time the requirement was seen.
ALTER TABLE "users" ADD COLUMN "two_factor_required_since" TIMESTAMPTZ(3);

-- Only the SHA-256 of a device token is stored; the unique index is also the lookup.
CREATE TABLE "remembered_devices" (
    "id" TEXT NOT NULL,
    "user_id" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "user_agent" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "remembered_devices_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "remembered_devices_token_hash_key" ON "remembered_devices"("token_hash");
CREATE INDEX "remembered_devices_user_id_idx" ON "remembered_devices"("user_id");

ALTER TABLE "remembered_devices" ADD CONSTRAINT "remembered_devices_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "organization_policies" (
    "organization_id" TEXT NOT NULL,
    "required_roles" TEXT[],
    "allowed_methods" TEXT[],
    "remember_device_days" INTEGER NOT NULL,
    "enrollment_grace_days" INTEGER NOT NULL,
    "sms_daily_limit" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "organization_policies_pkey" PRIMARY KEY ("organization_id")
);

-- Counted with a conditional upsert before the provider is called, given back if nothing was sent.
CREATE TABLE "org_sms_budgets" (
    "organization_id" TEXT NOT NULL,
    "day" DATE NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "org_sms_budgets_pkey" PRIMARY KEY ("organization_id", "day")
);
