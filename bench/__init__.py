"""Benchmarks: each module prints figures measured in one run, as ratios against a baseline run beside it."""
