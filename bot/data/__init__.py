"""Uploaded datasets: loading, profiling, and the train / eval split."""
