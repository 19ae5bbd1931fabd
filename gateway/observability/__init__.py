"""What operators see of each request: its id, log lines, Prometheus metrics and OpenTelemetry traces."""
