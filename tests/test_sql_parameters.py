"""Parameterised SQL only: every execute()/executemany() in the product's code gets its SQL as a string literal, or
as a psycopg `sql.SQL("literal")` composed with `sql.Identifier`/`sql.Literal`/`sql.Placeholder`; values go in the
parameters. An f-string, `%` or `.format()` on a str, or a concatenation there fails this test (read with `ast`,
nothing is run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("db", "app", "ui", "deploy", "training", "handler")
METHODS = {"execute", "executemany"}
COMPOSABLES = {"Identifier", "Literal", "Placeholder"}  # psycopg quotes what these hold
# (file, function, variable): SQL passed by name, checked by hand. apply_schema runs db/init.sql, a file of the
# repository read as is (several statements, so it cannot be one literal in the call).
REVIEWED = {("db/pool.py", "apply_schema", "script")}


def _is_sql_call(node: ast.expr, name: str) -> bool:
    """`sql.SQL(...)` or a bare `SQL(...)` (from psycopg.sql import SQL), likewise for the composables."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == name) or (isinstance(func, ast.Name) and func.id == name)


def _is_literal(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def safe_query(node: ast.expr) -> bool:
    """True for a string literal, sql.SQL("literal"), and sql.SQL("literal").format/join(...) of safe parts."""
    if _is_literal(node):
        return True
    if _is_sql_call(node, "SQL"):
        return len(node.args) == 1 and not node.keywords and _is_literal(node.args[0])
    if any(_is_sql_call(node, name) for name in COMPOSABLES):
        return True  # their content is quoted as an identifier or a value, never spliced in as SQL
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"format", "join"}:
        receiver = node.func.value
        parts = [*node.args, *(keyword.value for keyword in node.keywords)]
        if isinstance(receiver, ast.Call) and _is_sql_call(receiver, "SQL") and safe_query(receiver):
            return all(safe_query(part) or _is_list_of_safe(part) for part in parts)
    return False


def _is_list_of_safe(node: ast.expr) -> bool:
    return isinstance(node, ast.List | ast.Tuple) and all(safe_query(item) for item in node.elts)


def unsafe_sql_calls(path: Path, relative: str) -> tuple[list[str], int]:
    """(the execute calls of one file whose SQL is not provably constant, as 'file:line: source'; calls checked)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {
        child: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.walk(node)
    }
    problems, checked = [], 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in METHODS):
            continue
        checked += 1
        query = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "query"), None)
        if query is None or safe_query(query):
            continue
        function = functions.get(node)
        if isinstance(query, ast.Name) and function and (relative, function.name, query.id) in REVIEWED:
            continue
        problems.append(f"{relative}:{node.lineno}: {ast.unparse(node)[:120]}")
    return problems, checked


def product_files() -> list[Path]:
    return sorted(path for folder in PRODUCT for path in (ROOT / folder).rglob("*.py"))


def test_the_product_passes_sql_only_as_literals_with_parameters():
    problems, checked = [], 0
    for path in product_files():
        found, count = unsafe_sql_calls(path, path.relative_to(ROOT).as_posix())
        problems += found
        checked += count
    assert problems == [], "SQL built from strings; pass values as %s parameters:\n" + "\n".join(problems)
    assert checked >= 15, f"only {checked} execute() calls found: is the scan looking at the right files?"


UNSAFE = {
    "f-string": "conn.execute(f\"SELECT * FROM predictions WHERE browser_id = '{browser}'\")",
    "percent": 'conn.execute("SELECT * FROM predictions WHERE id = %s" % row_id)',
    "format": 'conn.execute("SELECT * FROM predictions WHERE id = {}".format(row_id))',
    "concatenation": 'conn.execute("SELECT * FROM predictions WHERE id = " + row_id)',
    "variable": "conn.execute(query, (row_id,))",
    "executemany": 'cursor.executemany(f"INSERT INTO t VALUES ({value})", [])',
    "sql.SQL of an f-string": 'conn.execute(sql.SQL(f"DROP DATABASE {name}"))',
    "sql.SQL formatted with a raw string": 'conn.execute(sql.SQL("DROP DATABASE {}").format(sql.SQL(name)))',
    "keyword": 'conn.execute(query=f"SELECT {column} FROM predictions")',
}
SAFE = {
    "literal with parameters": 'conn.execute("SELECT 1 FROM predictions WHERE id = %s", (row_id,))',
    "implicit concatenation": 'conn.execute("SELECT 1 " "FROM predictions")',
    "identifier": 'conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))',
    "join": 'conn.execute(sql.SQL(", ").join([sql.Identifier(a), sql.Literal(b)]))',
}


@pytest.mark.parametrize("source", UNSAFE.values(), ids=UNSAFE.keys())
def test_the_check_catches_sql_built_from_strings(tmp_path, source):
    path = tmp_path / "module.py"
    path.write_text(f"async def handler(conn, cursor, browser, row_id, query, name, value, column):\n    {source}\n")
    problems, checked = unsafe_sql_calls(path, "module.py")
    assert checked == 1 and len(problems) == 1 and problems[0].startswith("module.py:2: ")


@pytest.mark.parametrize("source", SAFE.values(), ids=SAFE.keys())
def test_the_check_accepts_literals_and_psycopg_composition(tmp_path, source):
    path = tmp_path / "module.py"
    path.write_text(f"def handler(conn, row_id, name, a, b):\n    {source}\n")
    assert unsafe_sql_calls(path, "module.py") == ([], 1)
