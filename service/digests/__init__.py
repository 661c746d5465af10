"""Managers' digest subscriptions and the scheduled digests they receive by mail."""
