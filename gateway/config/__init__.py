"""Configuration: the declarative file (file, schema, apply), the version every process watches (version,
signals), the in-process snapshot the hot path reads, renames, prices, and secrets with their encryption."""
