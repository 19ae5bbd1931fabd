"""Usage: the records each request leaves and their batched writer (records), and what operators read from
them: aggregates (stats), the dashboard and its charts, the admin additions, and retention."""
