"""The repository's own rules, run with the suite: lint, the layering contract, the docs
build (warnings as errors), a README that is a manual, module sizes, no history in
docstrings."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not installed (it is in the [test] extra)")
    return path


def test_ruff_finds_nothing():
    out = subprocess.run([_tool("ruff"), "check", "icemon", "tests", "benchmarks", "examples"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_the_layering_contract_holds():
    """hooks → recording → execution → model → classification/descriptors/io → geometry:
    no layer imports one above it, and the analysis never loads torch (pyproject.toml)."""
    out = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and "0 broken" in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_the_docs_build_with_warnings_as_errors(tmp_path):
    out = subprocess.run([_tool("mkdocs"), "build", "--strict", "--site-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "extending" / "index.html").exists()


def test_the_readme_is_a_manual():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    assert not re.search(r"\bsession \d", text, re.I)
    for name in ("LICENSE", "CHANGELOG.md", "benchmarks/README.md"):
        assert (ROOT / name).is_file(), name


def _modules():
    return sorted((ROOT / "icemon").rglob("*.py"))


def test_modules_are_small_or_say_why():
    for path in _modules():
        lines = path.read_text().splitlines()
        if len(lines) > 400:
            doc = ast.get_docstring(ast.parse("\n".join(lines))) or ""
            assert "Size:" in doc, f"{path.relative_to(ROOT)}: {len(lines)} lines, no reason"


def test_docstrings_carry_no_session_history():
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.search(r"\bsessions? \d", node.value, re.I), path


def test_no_import_cycle_in_the_package():
    """Each module's icemon imports (top level, outside TYPE_CHECKING) form no cycle."""
    graph = {}
    for path in _modules():
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("icemon"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("icemon")}
        graph[name] = deps
    state: dict[str, int] = {}

    def visit(n, stack):
        state[n] = 1
        for d in graph.get(n, ()):
            if d == n or d not in graph:
                continue
            assert state.get(d) != 1, " -> ".join([*stack, n, d])
            if d not in state:
                visit(d, [*stack, n])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [])
