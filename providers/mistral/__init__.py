"""Mistral: OpenAI's chat format with answers in content chunks (see content.py)."""
