"""Rate limits: requests per minute, tokens per minute and concurrent requests, per scope (global, endpoint,
API key), counted with GCRA in memory or in Redis (shared by every process and replica)."""
