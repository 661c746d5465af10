"""Synthetic company data with known violations, for tests, demos and benchmarks."""

from .generator import Manifest, generate

__all__ = ["Manifest", "generate"]
