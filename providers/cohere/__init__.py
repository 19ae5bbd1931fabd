"""Cohere: v2 chat (plain, streamed, tools) and v2 embed."""
