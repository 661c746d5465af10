"""Accounts of the API: users with roles and departments, and their Bearer tokens (stored hashed)."""
