"""Routing: which model serves a request (router), when to retry it (retry), which models to skip for now
(breaker), and the watchdog that fails a stalled upstream stream (watchdog)."""
