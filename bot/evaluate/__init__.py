"""Scoring answers against the reference: scores with intervals, charts, exports."""
