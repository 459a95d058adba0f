"""Corpus Exchange: the application (HTTP API, CLI, members, use cases)."""
