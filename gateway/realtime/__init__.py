"""Realtime over WebSockets: GET /gateway/openai/v1/realtime?model=<endpoint>."""
