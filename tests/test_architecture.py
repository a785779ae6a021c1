"""The package's shape, read from its source: imports run one way (from the commands down to
the models), with no import circle, not even under TYPE_CHECKING; no module over 300 lines and
no function over 50."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "srgan"
# Lowest first: a module may import from its own layer (without a circle) and the ones below.
LAYERS = [
    ("srgan.files", "srgan.machine", "srgan.ticks"),
    ("srgan.models",),
    ("srgan.checkpoint",),
    ("srgan.data", "srgan.datasets"),
    ("srgan.config",),
    ("srgan.inference",),
    ("srgan.eval",),
    ("srgan.run",),
    ("srgan.train",),
    ("srgan.benchmark",),
    ("srgan.commands",),
    ("srgan",),  # the package's face (srgan/__init__.py): nothing inside imports it
]
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index in LAYERS of `module`; a module no layer names fails (the face is srgan alone)."""
    for index, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name != "srgan" and module.startswith(name + ".")):
                return index
    raise AssertionError(f"{module} is in no layer of LAYERS")


def imports_in(source: str) -> set[str]:
    """The srgan modules `source` imports anywhere (functions and TYPE_CHECKING blocks
    included); `from package import name` counts as the submodule when it is one."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "srgan"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "srgan":
                continue
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found


GRAPH = {module: imports_in(path.read_text()) - {module} for module, path in MODULES.items()}


def test_every_layer_imports_only_its_own_and_lower_ones() -> None:
    upward = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)) is not None:
            return cycle
    return None


def test_the_import_reader_sees_hidden_and_late_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from srgan.train.loop import Stage\n"
        "def f():\n    import srgan.run.run\n    from srgan import files\n"
    )
    assert imports_in(source) == {"srgan.train.loop", "srgan.run.run", "srgan.files"}
    assert layer_of("srgan.train.loop") > layer_of("srgan.run.run") > layer_of("srgan.files")
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("srgan.unplaced")


def test_no_import_circle() -> None:
    assert find_cycle(GRAPH) is None


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_function_sizes(module: str) -> None:
    text = MODULES[module].read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[module]}: {lines} lines"
    long_functions = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long_functions == []
