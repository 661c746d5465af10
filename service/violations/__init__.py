"""Violations: what the rules found, keyed by (rule, record), with their status history."""
