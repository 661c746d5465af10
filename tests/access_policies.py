"""Access matrix entries of the policy library (see tests/access_matrix.py): anyone authenticated."""

from __future__ import annotations

from tests.access_matrix import Access, authenticated, register

register("GET", "/api/v1/policies", Access(expect=authenticated()))
register("GET", "/api/v1/clauses", Access(expect=authenticated()))
register("GET", "/api/v1/rules", Access(expect=authenticated()))
