"""The folder tree is the architecture: layers import only downwards, nobody imports a private name, SQL (calls and
text), the database connection and click stay in their layers, and modules stay small."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agentmem", "graph", "generators")

# Rank of each layer, lowest first. A module may import its own layer or a layer of lower rank; two layers of the
# same rank may not import each other.
LAYERS: list[tuple[str, int]] = [
    ("agentmem.errors", 0),
    ("agentmem.model", 0),
    ("agentmem.timeparse", 0),
    ("agentmem.facts", 0),
    ("agentmem.outdir", 0),
    ("agentmem.names", 0),
    ("generators", 0),
    ("agentmem.storage", 1),
    ("agentmem.geometry", 1),  # builds on generators.camera (rank 0), which generators share
    ("agentmem.encoders", 2),
    ("agentmem.search", 3),
    ("agentmem.spatial", 3),
    ("agentmem.formats", 4),
    ("agentmem.memory", 5),
    ("agentmem", 6),  # the package's public facade: ``from agentmem import Memory``
    ("graph", 7),
    ("agentmem.story", 8),
    ("agentmem.interactive", 8),
    ("agentmem.bench", 9),
    ("agentmem.cli", 10),
]
# The bottom layer: plain data, errors and rules with no I/O of their own. One layer, so they may import each other.
CORE = {
    "agentmem.errors",
    "agentmem.model",
    "agentmem.timeparse",
    "agentmem.facts",
    "agentmem.outdir",
    "agentmem.names",
}
# Where SQL may run: the storage layer, and the graph's own storage (its tables, compression's journal).
SQL_HOMES = ("agentmem/storage/", "graph/persist.py", "graph/tables.py", "graph/journal.py")
# SQL text: an upper-case SQL keyword, a bound comparison (``x=?``), a compared column of a table alias
# (``e.rid > 0``) or ``1=1``. FTS5's `` OR `` between match terms is query syntax, not SQL, and is not counted.
SQL_TEXT = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|FROM|WHERE|JOIN|ORDER BY|GROUP BY|HAVING|LIMIT|OFFSET|DISTINCT|BETWEEN"
    r"|IS NULL|IS NOT NULL|AND|NOT IN|DESC|ASC|PRAGMA|CREATE|DROP|ALTER|VALUES|COALESCE)\b"
    r"|\bIN \(|(=|<>|<=|>=|<|>)\s*\?|\b[a-z]\.[a-z_]+\s*(=|<>|<=|>=|<|>)|\b1=1\b"
)


def layer_of(module: str) -> tuple[str, int]:
    """The most specific layer prefix of ``module`` and its rank."""
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return ("agentmem core" if best in CORE else best), dict(LAYERS)[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imports_of(tree: ast.AST):
    """Every import in the module, including those inside functions; typing-only imports are left out."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                yield node.lineno, node.module, a.name


def _ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def layer_violations(modules: dict[str, str]) -> list[str]:
    """``module:line`` of every import against the layers, for sources keyed by module name."""
    bad = []
    for me, source in modules.items():
        my_layer, my_rank = layer_of(me)
        for line, target, name in imports_of(ast.parse(source)):
            if not _ours(target):
                continue
            full = f"{target}.{name}" if name and _is_module(f"{target}.{name}") else target
            their_layer, their_rank = layer_of(full)
            if their_layer == my_layer or (their_rank < my_rank):
                continue
            bad.append(f"{me}:{line} ({my_layer}) imports {full} ({their_layer})")
    return bad


def private_imports(modules: dict[str, str]) -> list[str]:
    """``module:line`` of every import of an underscored name from one of our packages."""
    bad = []
    for me, source in modules.items():
        for line, target, name in imports_of(ast.parse(source)):
            if _ours(target) and name and name.startswith("_"):
                bad.append(f"{me}:{line} imports {target}.{name}")
    return bad


def our_modules() -> dict[str, str]:
    return {module_name(p): p.read_text() for p in source_files()}


def test_layers_import_only_downwards():
    assert layer_violations(our_modules()) == []


def test_no_module_imports_a_private_name_of_another():
    assert private_imports(our_modules()) == []


def sql_calls(source: str) -> list[int]:
    """Lines of every ``.execute``/``.executemany``/``.executescript`` call."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"execute", "executemany", "executescript"}
    ]


def test_sql_runs_only_in_the_storage_layer():
    found = {str(p.relative_to(ROOT)): sql_calls(p.read_text()) for p in source_files()}
    outside = {rel: lines for rel, lines in found.items() if lines and not rel.startswith(SQL_HOMES)}
    assert outside == {}


def test_sql_calls_are_found_wherever_they_are():
    assert sql_calls("def f(c):\n    c.execute('x')\n    return [c.executemany('y', [])]\n") == [2, 3]


def _docstrings(tree: ast.AST) -> set[int]:
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def sql_fragments(source: str) -> list[int]:
    """Lines of every string constant (f-string parts included, docstrings aside) that reads as SQL."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return sorted(
        {
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and SQL_TEXT.search(node.value)
        }
    )


def connection_uses(source: str) -> list[int]:
    """Lines that reach a database connection: a ``.conn`` attribute, or an import of sqlite3."""
    return sorted(
        {
            node.lineno
            for node in ast.walk(ast.parse(source))
            if (isinstance(node, ast.Attribute) and node.attr == "conn")
            or (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sqlite3" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3")
        }
    )


def test_sql_text_stays_in_the_storage_layer():
    found = {str(p.relative_to(ROOT)): sql_fragments(p.read_text()) for p in source_files()}
    assert {rel: lines for rel, lines in found.items() if lines and not rel.startswith(SQL_HOMES)} == {}


def test_only_the_storage_layer_holds_a_connection():
    found = {str(p.relative_to(ROOT)): connection_uses(p.read_text()) for p in source_files()}
    outside = {rel: lines for rel, lines in found.items() if lines and not rel.startswith(SQL_HOMES)}
    assert outside == {}


def test_the_checkers_catch_sql_text_and_connections():
    source = (
        '"""A module about SELECT statements: docstrings may name SQL."""\n'
        "import sqlite3\n"
        "def f(store, ids, arch):\n"
        "    where = 'e.rid > 0'\n"
        '    args = f"src IN ({ids}) AND predicate=?{arch}"\n'
        "    rows = read_edges(store.conn, where, args)\n"
        "    return ' OR '.join(['\"storm\"', '\"sea\"']), 'k=1'\n"
    )
    assert sql_fragments(source) == [4, 5]
    assert connection_uses(source) == [2, 6]
    assert connection_uses("from sqlite3 import connect\nx = 1\n") == [1]


def test_only_the_cli_layer_imports_click():
    bad = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in source_files()
        if not module_name(p).startswith("agentmem.cli")
        for line, target, _ in imports_of(ast.parse(p.read_text()))
        if target.split(".")[0] == "click"
    ]
    assert bad == []


def test_generators_import_nothing_of_agentmem():
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {target}"
        for p in (ROOT / "generators").rglob("*.py")
        for line, target, _ in imports_of(ast.parse(p.read_text()))
        if target.split(".")[0] in ("agentmem", "graph")
    ]
    assert bad == []


def test_the_top_level_packages_are_exactly_agentmem_graph_and_generators():
    # A top-level ``bench`` collided with a distribution of that name; the benchmarks live in ``agentmem.bench``.
    top = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert (top, sorted(PACKAGES)) == (["agentmem", "generators", "graph"], ["agentmem", "generators", "graph"])


def test_nothing_imports_a_top_level_bench():
    # Text, not the AST: code in strings (a subprocess's ``-c``), notebooks and the docs' examples count too.
    files = [p for ext in ("py", "md", "ipynb") for p in ROOT.rglob(f"*.{ext}") if ".git" not in p.parts]
    pattern = re.compile(r"(?:^|[;\"'])\s*(?:from|import) bench\b", re.MULTILINE)
    bad = [f"{p.relative_to(ROOT)}" for p in files if ".venv" not in p.parts and pattern.search(p.read_text())]
    assert bad == []


# Camera geometry has one home: the pinhole record and the pixel grid in generators/camera.py (generators reach it
# there), poses, conventions and projection in agentmem/geometry.py.
GEOMETRY_HOMES = ("generators/camera.py", "agentmem/geometry.py")


def pinhole_definitions(source: str) -> list[int]:
    """Lines of every class with fields fx, fy, cx and cy, and of every ``np.meshgrid`` call (a pixel grid)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            names = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
            if {"fx", "fy", "cx", "cy"} <= names:
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "meshgrid":
            lines.append(node.lineno)
    return lines


def test_camera_records_and_pixel_grids_are_defined_once():
    found = {str(p.relative_to(ROOT)): pinhole_definitions(p.read_text()) for p in source_files()}
    assert {rel: lines for rel, lines in found.items() if lines and rel not in GEOMETRY_HOMES} == {}
    assert pinhole_definitions("class K:\n    fx: float\n    fy: float\n    cx: float\n    cy: float\n") == [1]


def test_every_module_is_under_500_lines_and_opens_with_its_job():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in source_files() if (n := len(p.read_text().splitlines())) > 500]
    undocumented = [str(p.relative_to(ROOT)) for p in source_files() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert (long, undocumented) == ([], [])


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("agentmem.storage.store", ("agentmem.storage", 1)),
        ("agentmem.story.planner", ("agentmem.story", 8)),
        ("agentmem.memory", ("agentmem.memory", 5)),
        ("graph.search", ("graph", 7)),
        ("agentmem.cli.graph", ("agentmem.cli", 10)),
        ("agentmem.bench.world", ("agentmem.bench", 9)),
    ],
)
def test_layer_of_picks_the_most_specific_layer(module, expected):
    assert layer_of(module) == expected


def test_the_checkers_catch_upward_imports_private_names_and_sideways_imports():
    modules = {
        "agentmem.storage.store": "from agentmem.search.query import Query\nfrom agentmem.errors import StoreError\n",
        "agentmem.search.query": "from agentmem.storage.store import _rows\n"
        "if TYPE_CHECKING:\n    from agentmem.memory import Memory\n",
        "graph.build": "def f():\n    import agentmem.story.planner\n",
        "agentmem.formats.ingest": "from agentmem import Memory\n",
    }
    assert layer_violations(modules) == [
        "agentmem.storage.store:1 (agentmem.storage) imports agentmem.search.query (agentmem.search)",
        "graph.build:2 (graph) imports agentmem.story.planner (agentmem.story)",
        "agentmem.formats.ingest:1 (agentmem.formats) imports agentmem (agentmem)",
    ]
    assert private_imports(modules) == ["agentmem.search.query:1 imports agentmem.storage.store._rows"]


def test_the_public_imports_work_and_load_no_model():
    code = (
        "import sys\n"
        "from agentmem import Memory, Query, PRESETS\n"
        "from agentmem.story import load_story, bundled_stories, Director, generate_story\n"
        "from agentmem.formats import ingest_file, ingest_locomo, example_path\n"
        "from graph import GraphMemory, CompressionPolicy, ExtractiveSummarizer\n"
        "from generators import get_generator\n"
        "print(sorted(m for m in ('torch', 'chromadb', 'sentence_transformers', 'diffusers') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert (res.returncode, res.stdout.strip()) == (0, "[]"), res.stderr


# Every CLI option with fixed choices, by command path and option. Those that name a registry's entries, and the
# registry ("module:attribute"; a function is called; the choices are its keys or items, in any order):
CHOICES_FROM_REGISTRIES = {
    ("generate", "--backend"): "generators.base:available_generators",
    ("world run", "--backend"): "generators.base:world_backends",
    ("bench world", "--backend"): "generators.base:world_backends",
    ("world run", "--mode"): "agentmem.interactive.loop:MODES",
    ("world retrieve", "--policy"): "agentmem.spatial.policies:POLICIES",
    ("query", "--preset"): "agentmem.search.fusion:PRESETS",
    ("entities", "--kind"): "agentmem.model:ENTITY_KINDS",
    ("ingest", "--format"): "agentmem.formats.ingest:FORMATS",
}
# ... and those whose choices are the command's own words, which no registry holds.
OWN_CHOICES = {
    ("query", "--match"): ["any", "all"],
    ("generate", "--format"): ["mp4", "gif"],
    ("graph export", "--format"): ["graphml", "json"],
}


def cli_choices(command: click.Command, path: tuple[str, ...] = ()) -> dict[tuple[str, str], list[str]]:
    """``(command path, option) -> choices`` of every option with a :class:`click.Choice`, in the whole tree."""
    found = {(" ".join(path), p.opts[0]): sorted(map(str, p.type.choices)) for p in command.params
             if isinstance(p, click.Option) and isinstance(p.type, click.Choice)}  # fmt: skip
    for name, sub in getattr(command, "commands", {}).items():
        found.update(cli_choices(sub, (*path, name)))
    return found


def registry_names(where: str) -> list[str]:
    module, _, attr = where.partition(":")
    registry = getattr(importlib.import_module(module), attr)
    return sorted(registry() if callable(registry) else registry)


def test_the_cli_choices_are_the_registries_names():
    from agentmem.cli.main import cli

    expected = {key: registry_names(where) for key, where in CHOICES_FROM_REGISTRIES.items()}
    expected.update({key: sorted(words) for key, words in OWN_CHOICES.items()})
    assert cli_choices(cli) == expected
