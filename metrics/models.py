"""Models of the metrics app (built in a later issue)."""
