"""A provider that answers from memory, for demos and tests without network."""
