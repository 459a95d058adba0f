"""Datasets, immutable versions, ingestion, search and metadata export."""
