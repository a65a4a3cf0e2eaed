"""Models of the playbooks app (built in a later issue)."""
