-- SMS pumping budgets: one row per (rule, key, fixed window). Incremented with a
-- conditional upsert before the provider is called, decremented if delivery fails.
CREATE TABLE "send_counters" (
    "scope" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "send_counters_pkey" PRIMARY KEY ("scope", "key", "window_start")
);

CREATE INDEX "send_counters_window_start_idx" ON "send_counters"("window_start");
