"""Run every benchmark module in turn (each exposes main()): python -m bench."""

import importlib
import pkgutil

import bench

for found in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
    if not found.name.startswith("_"):
        print(f"== bench.{found.name}", flush=True)
        importlib.import_module(f"bench.{found.name}").main()
