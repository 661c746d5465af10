"""The policy library, read-only over the API: manuals, clauses, parameters, rules."""
