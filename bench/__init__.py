"""Benchmarks: each module prints figures measured in one run, as ratios against a baseline run beside it.

Every module exposes main(); `python -m bench` (make bench) runs them all in name order.
"""
