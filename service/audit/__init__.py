"""The audit trail: an append-only, hash-chained log of every change (who, when, what)."""
