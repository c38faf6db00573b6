"""The house rule, read from the code: arrows only point down.

Every ``import`` and ``from ... import`` of every module is read with ``ast``
(including imports inside functions, which a run-time check would miss), so a
violation fails here before it becomes a dependency a user has to install.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each top-level package may not import. `cli` is the only place that
# joins `curate` and `classifiers`; `curate` is importable with neither Beam
# nor torch installed.
FORBIDDEN = {
    "curate": {"apache_beam", "torch", "classifiers", "pipelines", "train", "cli", "benchmarks", "tests"},
    "classifiers": {"apache_beam", "torch", "pipelines", "train", "cli", "benchmarks", "tests"},
    "train": {"apache_beam", "classifiers", "pipelines", "cli", "benchmarks", "tests"},
    "pipelines": {"torch", "train", "cli", "benchmarks", "tests"},
    "cli": {"apache_beam", "torch", "pipelines", "train", "benchmarks", "tests"},
}
# The stages of `curate`, in flow order: a stage imports `core`, itself and
# earlier stages, never a later one. `report` reads what every stage wrote.
STAGES = ["core", "ingest", "filters", "dedup", "decontam", "mixture", "report"]


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every absolute module name ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


def modules_of(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    return files


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    bad = []
    for path in modules_of(package):
        for mod in imported_modules(path):
            if mod.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_curate_stages_import_only_earlier_stages():
    found = {p.name for p in (ROOT / "curate").iterdir() if (p / "__init__.py").exists()}
    assert found == set(STAGES), f"curate/ subpackages {sorted(found)} differ from the flow {STAGES}"
    flat = [p.name for p in (ROOT / "curate").glob("*.py") if p.name != "__init__.py"]
    assert not flat, f"modules outside a stage: {flat}"
    bad = []
    for stage in STAGES:
        allowed = set(STAGES[: STAGES.index(stage) + 1])
        for path in modules_of(f"curate/{stage}"):
            for mod in imported_modules(path):
                parts = mod.split(".")
                if parts[0] == "curate" and len(parts) > 1 and parts[1] not in allowed:
                    bad.append(f"{path.relative_to(ROOT)} imports {mod} (a later stage)")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The rule must not be blind to a lazy or relative import in a function body."""
    pkg = tmp_path / "curate" / "core"
    pkg.mkdir(parents=True)
    mod = pkg / "x.py"
    mod.write_text("def f():\n    import torch\n    from ..mixture import shards\n")
    assert imported_modules(mod, tmp_path) == {"torch", "curate.mixture"}
