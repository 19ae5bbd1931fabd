"""The optional litellm adapter, for providers the gateway has no adapter of its own for (slower)."""
