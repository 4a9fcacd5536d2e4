"""The lint of the one door: patient tables are queried by their domains only.

In the spirit of the org-scope linter of Polar's server: a query on a patient table — a table
whose primary key leads with ``patient_id``, and ``patients`` itself, read from the SQLAlchemy
metadata — is allowed in the domain packages (``carnet.<domain>``: their services and internal
modules, which check the policy and audit, or say why not); anywhere else (the ways in:
``fhir``, ``portal``, ``web``, the CLI, ``exports``, ``app``; and the demo, the platform…) it is
a shortcut around the policy. What counts as a query on a model: ``select``, ``update``,
``delete``, ``insert``, ``exists`` or a join naming it, ``session.get(Model, …)``,
``session.query(Model)``, ``Model.__table__`` and raw SQL text naming the table.

It also refuses any import of a module named ``internal`` (``carnet.documents.internal``: the
actor-less readers jobs need) from a way in.

Inside a domain, the door is made a signature: a public function of a service module that
queries a patient table takes the dossier opened at the door (a parameter annotated
``OpenedDossier``, ``carnet.access.door``), so no way in reaches patient rows with a bare
``(actor, patient_id)``. Exempt are the door itself (``access/door.py``, ``access/guard.py``),
modules named ``internal`` (what jobs read without an actor), ``models.py`` and ``errors.py``;
a deliberate exception says why in its signature (``# patient-data: <reason>``). Only the
function's own body is read: a private helper it calls is its own business.

A deliberate exception carries ``# patient-data: <reason>`` on the flagged line (or on the first
line of its statement), visible in review. Run it as
``python tests/architecture/patient_tables.py [paths…]`` (``make lint`` does, on ``src/carnet``);
``tests/architecture/test_patient_tables.py`` runs it too.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table

from carnet import schema
from carnet.db import Base

SOURCE = Path(__file__).resolve().parents[2] / "src" / "carnet"
ESCAPE = re.compile(r"#\s*patient-data:\s*\S")

# The domain packages: each owns its tables and answers for the policy on them. Packages by
# name, not files, so a module split inside a domain keeps its right.
DOMAINS = frozenset(
    {
        "access",
        "audit",
        "auth",
        "catalogue",
        "directory",
        "documents",
        "essentials",
        "indicators",
        "laboratory",
        "feeds",
        "cda",
        "clinical",
        "lifecycle",
        "notifications",
        "patients",
        "storage",
    }
)
# The ways in, which may not import an internal module (no policy, no audit behind it).
WAYS_IN = frozenset({"fhir", "portal", "web", "oauth", "cli", "exports", "app", "xds", "mllp"})
# The door itself, which opens what the rule below asks for; and the modules of a domain that
# are no services (mapped tables, errors).
DOOR = frozenset({("access", "door"), ("access", "guard")})
NOT_SERVICES = frozenset({"models", "errors", "__init__"})
OPENED = "OpenedDossier"
# Alembic revisions change the schema and move rows as a whole; they serve nobody.
NOT_CHECKED = frozenset({"migrations"})

_QUERIES = frozenset(
    {"select", "update", "delete", "insert", "exists", "join", "outerjoin", "select_from"}
)
_SESSION_LOOKUPS = frozenset({"get", "query", "get_one"})


def patient_tables() -> dict[str, str]:
    """Class name → table name of every mapped patient table (``patient_id`` leads its key)."""
    assert schema.metadata() is Base.metadata  # every domain's models are registered
    tables = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        if not isinstance(table, Table):  # Carnet maps tables only; a mapped select never
            continue
        key = [column.name for column in table.primary_key.columns]
        if table.name == "patients" or key[:1] == ["patient_id"]:
            tables[mapper.class_.__name__] = str(table.name)
    return tables


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _package_of(path: Path) -> str | None:
    """``carnet.<package>``'s package name (``cli`` for ``cli.py``), None outside carnet."""
    parts = path.resolve().parts
    if "carnet" not in parts:
        return None
    index = len(parts) - 1 - parts[::-1].index("carnet")
    rest = parts[index + 1 :]
    return rest[0].removesuffix(".py") if rest else None


class _Reader(ast.NodeVisitor):
    def __init__(self, path: Path, lines: Sequence[str], models: dict[str, str]) -> None:
        self.path = path
        self.lines = lines
        self.models = models
        self.package = _package_of(path)
        self.names: dict[str, str] = {}  # local name → patient model class name
        self.modules: set[str] = set()  # local names of imported carnet modules
        self.found: list[Violation] = []
        self.statement: ast.stmt | None = None  # the statement being read
        self.sql = re.compile(
            r"\b(?:from|join|update|into)\s+(" + "|".join(sorted(models.values())) + r")\b",
            re.IGNORECASE,
        )

    def visit(self, node: ast.AST) -> None:
        if not isinstance(node, ast.stmt):
            super().visit(node)
            return
        outer, self.statement = self.statement, node
        super().visit(node)
        self.statement = outer

    def _flag(self, node: ast.AST, message: str) -> None:
        line = getattr(node, "lineno", 1)
        end = getattr(node, "end_lineno", line) or line
        # The escape may sit on any line from the statement's first to the query's last: a
        # query wrapped by the formatter keeps room for its reason.
        start = min(line, getattr(self.statement, "lineno", line))
        if any(ESCAPE.search(self.lines[number - 1]) for number in range(start, end + 1)):
            return
        self.found.append(Violation(self.path, line, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_internal(node, alias.name)
            if alias.name.startswith("carnet"):
                self.modules.add((alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            self._check_internal(node, f"{module}.{alias.name}")
            local = alias.asname or alias.name
            if not module.startswith("carnet") and node.level == 0:
                continue
            if alias.name in self.models:
                self.names[local] = alias.name
            else:
                self.modules.add(local)

    def _check_internal(self, node: ast.AST, dotted: str) -> None:
        if self.package in WAYS_IN and "internal" in dotted.split("."):
            self._flag(node, f"a way in imports an internal module ({dotted})")

    def _model_in(self, node: ast.AST) -> str | None:
        """The patient model ``node`` names (``Document``, ``models.Document.id``…), if any."""
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and child.id in self.names:
                return self.names[child.id]
            if (
                isinstance(child, ast.Attribute)
                and child.attr in self.models
                and isinstance(child.value, ast.Name)
                and child.value.id in self.modules
            ):
                return child.attr
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr == "__table__" and (model := self._model_in(node.value)):
            self._flag(node, f"{model}.__table__ outside its domain")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        name = (
            function.id
            if isinstance(function, ast.Name)
            else function.attr
            if isinstance(function, ast.Attribute)
            else ""
        )
        arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
        if name in _QUERIES or (name in _SESSION_LOOKUPS and isinstance(function, ast.Attribute)):
            lookup = arguments[:1] if name in _SESSION_LOOKUPS else arguments
            model = next(filter(None, map(self._model_in, lookup)), None)
            if model:
                self._flag(node, f"{name}() on {self.models[model]} ({model}) outside its domain")
        if name == "text":
            for argument in arguments:
                statement = argument.value if isinstance(argument, ast.Constant) else None
                if isinstance(statement, str) and (match := self.sql.search(statement)):
                    self._flag(node, f"SQL on {match.group(1)} outside its domain")
        self.generic_visit(node)


def check_file(path: Path, models: dict[str, str] | None = None) -> list[Violation]:
    """The violations in one module: queries outside the domains, doors left out inside."""
    package = _package_of(path)
    if package in NOT_CHECKED:
        return []
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    models = models or patient_tables()
    if package in DOMAINS:
        return _unopened(path, lines, tree, models)
    reader = _Reader(path, lines, models)
    reader.visit(tree)
    return reader.found


def _unopened(
    path: Path, lines: Sequence[str], tree: ast.Module, models: dict[str, str]
) -> list[Violation]:
    """The public functions of a domain's service module that query a patient table without
    taking an ``OpenedDossier``."""
    module = path.stem
    if (
        module in NOT_SERVICES
        or "internal" in (module, *path.parent.name.split("."))
        or (_package_of(path), module) in DOOR
    ):
        return []
    reader = _Reader(path, lines, models)
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            reader.visit(statement)
    found = []
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef) or function.name.startswith("_"):
            continue
        header = lines[function.lineno - 1 : function.body[0].lineno - 1]
        if _takes_opened(function) or any(ESCAPE.search(line) for line in header):
            continue
        reader.found = []
        for statement in function.body:
            reader.visit(statement)
        if reader.found:
            first = reader.found[0].message.split(" outside", 1)[0]
            found.append(
                Violation(
                    path,
                    function.lineno,
                    f"{function.name}() queries a patient table ({first}) without taking an "
                    f"{OPENED}",
                )
            )
    return found


def _takes_opened(function: ast.FunctionDef) -> bool:
    arguments = function.args
    for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
        annotation = argument.annotation
        if annotation is not None and OPENED in ast.unparse(annotation):
            return True
    return False


def check(paths: Sequence[Path]) -> list[Violation]:
    """The violations under ``paths`` (files or directories), in file and line order."""
    models = patient_tables()
    found: list[Violation] = []
    for path in paths:
        files: Iterator[Path] = path.rglob("*.py") if path.is_dir() else iter([path])
        for file in sorted(files):
            found.extend(check_file(file, models))
    return found


def main(arguments: Sequence[str]) -> int:
    violations = check([Path(argument) for argument in arguments] or [SOURCE])
    for violation in violations:
        print(violation)
    if violations:
        print(
            f"{len(violations)} query(ies) on patient tables outside their domain or their door: "
            "call the domain's service with a dossier opened at carnet.access.door, move an "
            "actor-less reader to an internal module, or say why with "
            "'# patient-data: <reason>' on the line."
        )
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
