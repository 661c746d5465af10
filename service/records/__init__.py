"""Submitted business records, versioned: every accepted change is a new version, history is kept."""
