"""Penalties by the ladder for confirmed findings, their decision, appeals and ledgers."""
