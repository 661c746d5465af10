"""Department self-checks (自查): declaration against what zhidu finds; missing self-checks."""
