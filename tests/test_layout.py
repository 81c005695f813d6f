"""The layout's rules, read from the code's own imports with `ast` (TYPE_CHECKING imports count too).

bot/ is one package per stage, stacked in FLOORS: a package imports only itself and packages below it, no module
takes part in an import circle, and only the composition root (bot.cli) reaches up to handlers/ and sandbox/.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ["core", "prompts", "prices", "graders", "spec", "data", "costs", "trainers", "collect", "evaluate", "train",
          "runs", "cli"]
PROJECT = ("bot", "handlers", "storage", "sandbox")


def modules() -> dict[str, Path]:
    found = {}
    for top in PROJECT:
        for file in (ROOT / top).rglob("*.py"):
            name = ".".join(file.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = file
    return found


def imports(name: str, file: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports (a `from package import module` counts as the module)."""
    targets = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (file.name == "__init__.py")]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


GRAPH = {name: imports(name, file, modules()) for name, file in modules().items()}


def floor(module: str) -> int | None:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if parts[0] == "bot" and len(parts) > 2 and parts[1] in FLOORS else None


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        done.add(node)
        for target in sorted(graph.get(node, ())):
            found = visit(target, [*path, node])
            if found:
                return found
        return None

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return None


def test_every_package_of_bot_has_a_floor():
    packages = {p.name for p in (ROOT / "bot").iterdir() if (p / "__init__.py").exists()} - {"examples"}
    assert packages == set(FLOORS)


def test_no_import_circle_among_the_modules_of_bot():
    assert circle({name: {t for t in targets if t.startswith("bot")} for name, targets in GRAPH.items()
                   if name.startswith("bot")}) is None


def test_bot_packages_import_only_downwards():
    upward = sorted(f"{source} -> {target}" for source, targets in GRAPH.items() for target in targets
                    if floor(source) is not None and floor(target) is not None and floor(target) > floor(source))
    assert upward == []


def test_only_the_composition_root_reaches_handlers_and_sandbox():
    reaching = sorted(f"{source} -> {target}" for source, targets in GRAPH.items() for target in targets
                      if source.startswith("bot.") and not source.startswith("bot.cli")
                      and target.split(".")[0] in ("handlers", "sandbox"))
    assert reaching == []


def test_storage_stands_below_bot_and_handlers():
    reaching = sorted(f"{source} -> {target}" for source, targets in GRAPH.items() for target in targets
                      if source.startswith("storage") and not target.startswith("storage"))
    assert reaching == []


def test_no_stage_imports_the_run_service():
    stages = ("bot.collect", "bot.train", "bot.evaluate", "bot.trainers")
    reaching = sorted(f"{source} -> {target}" for source, targets in GRAPH.items() for target in targets
                      if source.startswith(stages) and target.startswith("bot.runs"))
    assert reaching == []


def test_no_import_module_of_project_code():
    for name, file in modules().items():
        if name.startswith("bot"):
            assert "import_module(" not in file.read_text(encoding="utf-8"), name
