"""Run every benchmark module in turn: python -m bench."""

import importlib

MODULES = ("bench.estimate",)

for name in MODULES:
    print(f"== {name}")
    importlib.import_module(name).main()
