"""Log lines that name their request: a filter adds the current request id to every record, and
`GATEWAY_LOG_FORMAT=json` renders each record as one JSON object per line."""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson

from gateway.observability.requestid import current

# Fields a request's own log line carries (see gateway/observability/asgi.py), copied into the JSON object.
REQUEST_FIELDS = ("method", "path", "route", "endpoint", "model", "provider", "status", "duration_ms",
                  "overhead_ms", "ttft_ms", "attempts", "input_tokens", "output_tokens", "error_type")


class RequestIdFilter(logging.Filter):
    """Sets `record.request_id` ("-" outside a request) so every format can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            scope = current.get()
            record.request_id = scope.request_id if scope is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the request fields when the
    record has them, and the exception's traceback as text."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()

