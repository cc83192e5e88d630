"""The package's shape: arrows point down (cli -> loop -> parts -> types), modules stay small.

Parsed with `ast`, so an import inside a function (the usual way round a cycle) counts too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sharpen"
MAX_LINES = 300  # STYLE.md: a module over ~300 lines is usually two modules
# What a part must never import: the layers above it.
ABOVE_THE_PARTS = ("sharpen.seeding", "sharpen.loop", "sharpen.monitor", "sharpen.api", "sharpen.cli")
LOW_PARTS = ("policy", "feedback")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, at any depth; `from sharpen import x` gives sharpen.x."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("part", LOW_PARTS)
def test_parts_do_not_import_the_layers_above_them(part):
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
           for path in sorted((PACKAGE / part).rglob("*.py"))
           for line, module in imported_modules(path)
           if any(is_under(module, above) for above in ABOVE_THE_PARTS)]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from sharpen.seeding import cache_root\n    import sharpen.loop\n"
                   "from sharpen import monitor\n")
    modules = [m for _, m in imported_modules(src)]
    assert "sharpen.seeding" in modules and "sharpen.loop" in modules and "sharpen.monitor" in modules


def test_leaf_modules_import_nothing_of_sharpen():
    for name in ("paths.py", "stats.py"):
        assert not [m for _, m in imported_modules(PACKAGE / name) if is_under(m, "sharpen")], name


def test_no_module_is_over_300_lines():
    long = {str(path.relative_to(PACKAGE.parent)): n for path in sorted(PACKAGE.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
