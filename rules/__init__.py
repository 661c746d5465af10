"""zhidu rules: the policy library, the record model and the two rule engines.

Pure Python: no web framework and no database session lives here (enforced by import-linter).
"""
