"""Ingestion: records submitted as JSON or files, stored and evaluated on arrival."""
