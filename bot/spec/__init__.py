"""A run's settings (RunSpec) and the messages they make."""
