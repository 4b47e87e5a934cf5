"""The code's shape: libraries through their public names only, and a core free of the doors."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("service", "scripts", "tests") for p in (ROOT / d).rglob("*.py"))
OURS = ("service", "tests")
DOORS = ("service.api", "service.batch", "service.training", "service.db", "service.registry",
         "service.cli", "flask", "flask_smorest", "limits", "werkzeug", "webargs",
         "sqlalchemy", "alembic", "gunicorn", "prometheus_client", "sklearn", "skops")  # fmt: skip


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, imported name or None) of every import in a file."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def test_no_private_name_of_a_dependency_is_imported():
    """A `_module` or `_name` of a library can change in any release without notice."""
    bad = []
    for path in SOURCES:
        for line, module, name in _imports(path):
            if module.split(".")[0] in OURS or module == "__future__":
                continue
            parts = [*module.split("."), *([name] if name else [])]
            if any(_private(part) for part in parts):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module} {name or ''}")
    assert not bad, bad


def test_the_private_member_check_runs_in_the_lint_step():
    """Attribute access such as `proxy._get_current_object()` is ruff's SLF001, which `make
    lint` runs over the same files."""
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"SLF"' in config
    lint = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "ruff check service tests scripts" in lint


@pytest.mark.parametrize("path", sorted((ROOT / "service" / "core").glob("*.py")), ids=str)
def test_the_core_imports_nothing_of_a_door_flask_or_sql(path):
    bad = [f"{line}: {module}" for line, module, _ in _imports(path)
           if module.startswith(DOORS)]  # fmt: skip
    assert not bad, bad


def test_recommending_loads_no_door_flask_or_sql():
    code = (
        "import sys; from service.core.recommend import Recommender; "
        "Recommender().recommend({'footwear': {'current_drop_mm': 8}}); "
        f"print(sorted(m for m in sys.modules if m.startswith({DOORS!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_tests_mirror_the_packages():
    packages = {p.name for p in (ROOT / "service").iterdir() if (p / "__init__.py").is_file()}
    mirrored = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").is_file()}
    assert packages == mirrored


def test_no_native_code_is_built():
    native = [p for d in ("service", "scripts", "tests") for p in (ROOT / d).rglob("*")
              if p.suffix in (".c", ".h", ".pyx", ".cpp", ".so")]  # fmt: skip
    assert not native
    assert "ext-modules" not in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
