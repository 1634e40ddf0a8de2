"""The package's architecture, checked on its source (see docs/architecture.md).

Every ``import`` and ``from ... import`` statement of ``tlcourse`` counts, wherever it is (inside a function,
under ``if TYPE_CHECKING:``), relative ones resolved. The rules:

- no import cycle between modules of ``tlcourse``;
- imports go down the shelves, classroom -> experiments -> library (``tlcourse/__main__.py``, the command
  line, may import any of them), and inside the library down its layers, data -> models -> modules ->
  methods -> train, metrics -> plots;
- no private name (``_x``) of a module imported, or read as an attribute, from another module;
- no module or class named like a test (``test_*``, ``Test*``) inside the package: tools would collect it.

The checker is plain functions over a folder, so the tests below also feed it small broken packages.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "tlcourse"

# A module may import a module of its own rank or of a lower one, never a higher one.
SHELVES = {"library": 0, "experiments": 1, "classroom": 2}
# `exercises` is what the student edition's stubs call (tlcourse.classroom.edition): below every layer.
LIBRARY_LAYERS = {
    "exercises": 0,
    "data": 0,
    "models": 1,
    "modules": 2,
    "methods": 3,
    "train": 4,
    "metrics": 4,
    "plots": 5,
}


@dataclass(frozen=True)
class Import:
    importer: str  # the importing module, dotted
    module: str  # the imported module, dotted (a submodule when a `from` names one)
    name: str | None  # the name taken from it, for `from module import name`; None for `import module`
    line: int

    def where(self) -> str:
        return f"{self.importer} (line {self.line})"


def modules_of(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the package whose folder is ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules: dict[str, Path], package: str) -> list[Import]:
    """Every import of a module of ``package`` by the module ``name`` (its file is ``path``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in modules:  # `from package import module`
                    found.append(Import(name, submodule, None, node.lineno))
                else:
                    found.append(Import(name, source, alias.name, node.lineno))
    return [i for i in found if i.module == package or i.module.startswith(package + ".")]


def private_attributes(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """``module._x`` read in ``name`` where ``module`` is another module of the package, imported."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    aliases: dict[str, str] = {}  # local name -> module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    return [
        f"{name} (line {node.lineno}) reads the private name {node.attr} of {aliases[node.value.id]}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and aliases[node.value.id] != name
        and is_private(node.attr)
    ]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_graph(root: Path) -> tuple[dict[str, Path], list[Import]]:
    modules = modules_of(root)
    edges = [i for name, path in modules.items() for i in imports_of(name, path, modules, root.name)]
    return modules, edges


def cycles(modules: dict[str, Path], edges: list[Import]) -> list[tuple[list[str], list[str]]]:
    """(a shortest cycle, the first module repeated at its end; the whole group) per group of modules that
    import each other, directly or through others."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in edges:
        if edge.module in graph and edge.module != edge.importer:
            graph[edge.importer].add(edge.module)
    # Tarjan's strongly connected components, then one shortest cycle through each group of two or more.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(shortest_cycle(graph, group), sorted(group)) for group in groups]


def describe_cycle(cycle: list[str], group: list[str]) -> str:
    others = sorted(set(group) - set(cycle))
    return " -> ".join(cycle) + (f" (also in the cycle: {', '.join(others)})" if others else "")


def shortest_cycle(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the first module (by name) of a group of modules that import each other."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if start in graph[node]:
            return [*paths[node], start]
        for nxt in sorted(graph[node] & group):
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # cannot happen: every group is strongly connected


def shelf_rank(module: str) -> int | None:
    """The shelf's rank of a module; None for the package's own __init__ and modules on no shelf."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] == "__main__":
        return max(SHELVES.values()) + 1  # the command line sits on top of every shelf
    return SHELVES.get(parts[1])


def layer_rank(module: str) -> int | None:
    """The layer's rank of a module of the library; None for a module on no layer."""
    parts = module.split(".")
    if len(parts) == 2:
        return max(LIBRARY_LAYERS.values()) + 1  # the library's __init__ sits on top of its layers
    return LIBRARY_LAYERS.get(parts[2])


def upward_imports(edges: list[Import]) -> list[str]:
    found = []
    for edge in dict.fromkeys(Import(e.importer, e.module, None, e.line) for e in edges):  # once per statement
        mine, theirs = shelf_rank(edge.importer), shelf_rank(edge.module)
        if mine is None or theirs is None or edge.importer.split(".")[1] == "__main__":
            continue  # the package's __init__ and the command line may import anything
        if theirs > mine:
            found.append(
                f"{edge.where()} imports {edge.module}: a shelf imports only the shelves below it "
                "(classroom -> experiments -> library)"
            )
        elif mine == theirs == SHELVES["library"]:
            mine, theirs = layer_rank(edge.importer), layer_rank(edge.module)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(
                    f"{edge.where()} imports {edge.module}: a layer of the library imports only the "
                    "layers below it (data -> models -> modules -> methods -> train, metrics -> plots)"
                )
    return found


def private_imports(modules: dict[str, Path], edges: list[Import]) -> list[str]:
    found = [
        f"{edge.where()} imports the private name {edge.name} from {edge.module}"
        for edge in edges
        if edge.name is not None and is_private(edge.name) and edge.module != edge.importer
    ]
    found += [
        f"{edge.where()} imports the private module {edge.module}"
        for edge in edges
        if is_private(edge.module.split(".")[-1]) and edge.module.rpartition(".")[0] != edge.importer.rpartition(".")[0]
    ]
    for name, path in modules.items():
        found += private_attributes(name, path, modules)
    return found


def names_like_tests(modules: dict[str, Path]) -> list[str]:
    found = [f"{name}: a module named like a test" for name in modules if name.split(".")[-1].startswith("test_")]
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found += [
            f"{name} (line {node.lineno}): class {node.name} is named like a test"
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test")
        ]
    return found


def unplaced_modules(modules: dict[str, Path]) -> list[str]:
    """Modules that no rule would check: on no shelf, or in the library on no layer (a `utils.py`, say)."""
    found = []
    for module in sorted(modules):
        parts = module.split(".")
        if len(parts) < 2 or parts[1] == "__main__":
            continue  # the package's __init__ and the command line
        if shelf_rank(module) is None:
            found.append(f"{module}: on no shelf; put it in {', '.join(SHELVES)} (docs/architecture.md)")
        elif parts[1] == "library" and layer_rank(module) is None:
            found.append(f"{module}: on no layer of the library; put it in {', '.join(LIBRARY_LAYERS)}")
    return found


def architecture_problems(root: Path) -> dict[str, list[str]]:
    """Every broken rule of the package in the folder ``root``, by rule; every list empty when it keeps them."""
    modules, edges = import_graph(root)
    return {
        "import cycles": [describe_cycle(*found) for found in cycles(modules, edges)],
        "upward imports": upward_imports(edges),
        "private names imported": private_imports(modules, edges),
        "names that look like tests": names_like_tests(modules),
        "modules outside the shelves": unplaced_modules(modules),
    }


def report(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{rule}:\n" + "\n".join(f"  {p}" for p in found) for rule, found in problems.items() if found)


# --- the real package -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        "import cycles",
        "upward imports",
        "private names imported",
        "names that look like tests",
        "modules outside the shelves",
    ],
)
def test_the_package_keeps_its_architecture(rule):
    problems = architecture_problems(PACKAGE_ROOT)[rule]
    assert not problems, f"tlcourse breaks a rule of docs/architecture.md, {rule}:\n" + "\n".join(problems)


def test_the_checker_sees_the_whole_package():
    modules, edges = import_graph(PACKAGE_ROOT)
    assert {"tlcourse.__main__", "tlcourse.library", "tlcourse.experiments", "tlcourse.classroom"} <= set(modules)
    # Imports inside functions count: the command line imports the experiments lazily.
    assert any(e.importer == "tlcourse.__main__" and e.module.startswith("tlcourse.experiments") for e in edges)


# --- the checker on small broken packages --------------------------------------------------------------------


def fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A package named tlcourse under tmp_path with the given files (paths relative to it) and every __init__."""
    root = tmp_path / "tlcourse"
    for relative, source in {"__init__.py": "", **files}.items():
        path = root / relative
        folder = path.parent
        while True:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "__init__.py").touch()
            if folder == root:
                break
            folder = folder.parent
        path.write_text(source)
    return root


def test_a_clean_fake_package_passes(tmp_path):
    root = fake_package(
        tmp_path,
        {
            "library/data/sources.py": "X = 1\n",
            "library/models.py": "from .data.sources import X\n",
            "library/methods/erm.py": "from ..models import X\nimport tlcourse.library.data.sources as s\nY = s.X\n",
            "experiments/chapter.py": "from tlcourse.library.methods import erm\n",
            "classroom/course.py": "def run():\n    from tlcourse.experiments import chapter\n",
            "__main__.py": "from tlcourse.classroom import course\n",
        },
    )
    assert not any(architecture_problems(root).values()), report(architecture_problems(root))


def test_a_module_outside_the_shelves_and_layers_is_reported(tmp_path):
    root = fake_package(tmp_path, {"utils.py": "X = 1\n", "library/helpers.py": "Y = 2\n", "library/models.py": ""})
    assert architecture_problems(root)["modules outside the shelves"] == [
        "tlcourse.library.helpers: on no layer of the library; put it in "
        "exercises, data, models, modules, methods, train, metrics, plots",
        "tlcourse.utils: on no shelf; put it in library, experiments, classroom (docs/architecture.md)",
    ]


def test_a_cycle_is_reported_even_through_an_import_in_a_function(tmp_path):
    root = fake_package(
        tmp_path,
        {
            "library/data/a.py": "from . import b\n",
            "library/data/b.py": "def load():\n    from .c import C\n",
            "library/data/c.py": "from tlcourse.library.data.a import A\n",
        },
    )
    assert architecture_problems(root)["import cycles"] == [
        "tlcourse.library.data.a -> tlcourse.library.data.b -> tlcourse.library.data.c -> tlcourse.library.data.a"
    ]


def test_a_cycle_through_a_package_init_is_reported(tmp_path):
    root = fake_package(
        tmp_path,
        {
            "library/data/__init__.py": "from .shifts import shift\n",
            "library/data/shifts.py": "from tlcourse.library.data import Domain\n",
        },
    )
    assert architecture_problems(root)["import cycles"] == [
        "tlcourse.library.data -> tlcourse.library.data.shifts -> tlcourse.library.data"
    ]


@pytest.mark.parametrize(
    "path, source, culprit",
    [
        ("library/train.py", "from tlcourse.experiments import registry\n", "tlcourse.experiments.registry"),
        ("library/models.py", "def f():\n    import tlcourse.classroom.grading\n", "tlcourse.classroom.grading"),
        ("experiments/chapter.py", "from ..classroom.grading import assert_close\n", "tlcourse.classroom.grading"),
        ("library/data/sources.py", "from ..models import Net\n", "tlcourse.library.models"),
        ("library/methods/erm.py", "from tlcourse.library.train import fit\n", "tlcourse.library.train"),
        ("library/modules/grl.py", "from tlcourse.library.methods import dann\n", "tlcourse.library.methods.dann"),
        ("library/metrics.py", "from .plots import figure\n", "tlcourse.library.plots"),
        ("library/data/sources.py", "import tlcourse.library\n", "tlcourse.library"),
    ],
)
def test_an_upward_import_is_reported(tmp_path, path, source, culprit):
    root = fake_package(
        tmp_path,
        {
            "library/models.py": "",
            "library/plots.py": "",
            "library/methods/dann.py": "",
            "experiments/registry.py": "",
            "classroom/grading.py": "",
        }
        | {path: source},
    )
    (problem,) = architecture_problems(root)["upward imports"]
    assert f"imports {culprit}" in problem, problem


def test_downward_and_command_line_imports_are_allowed(tmp_path):
    root = fake_package(
        tmp_path,
        {
            "library/plots.py": "from tlcourse.library import train, metrics, models\nfrom .data import sources\n",
            "library/train.py": "from .methods.base import Method\nfrom .modules import grl\nfrom . import metrics\n",
            "library/metrics.py": "",
            "library/models.py": "from tlcourse.library.data.sources import load\n",
            "library/modules/grl.py": "from ..models import Net\n",
            "library/methods/base.py": "from ..modules.grl import reverse\n",
            "library/data/sources.py": "",
            "__main__.py": "from tlcourse.classroom import instructor\nfrom tlcourse.library import plots\n",
            "classroom/instructor.py": "",
        },
    )
    assert architecture_problems(root)["upward imports"] == []


def test_a_private_name_imported_or_read_across_modules_is_reported(tmp_path):
    root = fake_package(
        tmp_path,
        {
            "library/data/sources.py": "def _helper():\n    pass\n",
            "library/data/shifts.py": "from .sources import _helper\n",
            "library/models.py": "from tlcourse.library.data import sources\nsources._helper()\n",
            "library/metrics.py": "from tlcourse.library.data import __doc__\n",  # dunders are public
        },
    )
    problems = architecture_problems(root)["private names imported"]
    assert len(problems) == 2, problems
    assert "tlcourse.library.data.shifts (line 1) imports the private name _helper" in problems[0]
    assert "tlcourse.library.models (line 2) reads the private name _helper" in problems[1]


def test_modules_and_classes_named_like_tests_are_reported(tmp_path):
    root = fake_package(
        tmp_path,
        {
            "library/methods/test_time.py": "",
            "experiments/tta.py": "class TestTimeConfig:\n    pass\n",
        },
    )
    assert architecture_problems(root)["names that look like tests"] == [
        "tlcourse.library.methods.test_time: a module named like a test",
        "tlcourse.experiments.tta (line 1): class TestTimeConfig is named like a test",
    ]


def test_relative_imports_resolve_from_modules_and_packages():
    assert resolve("tlcourse.library.data.sources", False, 1, "shifts") == "tlcourse.library.data.shifts"
    assert resolve("tlcourse.library.data.sources", False, 2, None) == "tlcourse.library"
    assert resolve("tlcourse.library.data", True, 1, "store") == "tlcourse.library.data.store"
    assert resolve("tlcourse.library.data", True, 2, "models") == "tlcourse.library.models"
