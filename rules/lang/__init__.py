"""The rule language: condition types (a registry), the rule loader, and the IR both engines run."""
