"""Request logs: the payloads of requests to endpoints with `log_payloads`, for the admin's request log."""
