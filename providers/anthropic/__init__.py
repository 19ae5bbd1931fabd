"""Anthropic Messages API behind the unified (OpenAI-shaped) interface, and as a passthrough target."""
