"""Guardrails: what operators configure (models, admin), the kinds (kinds/), where the text is in each wire
format (text, stream_text), and running them on requests, responses and streams (engine, compiled,
streams, sse)."""
