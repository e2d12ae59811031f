"""docs/journal-format.md section 5 against the code: every kind of journal entry the
ledger appends has its own heading there, and every kind documented is one the ledger
still appends. Pure: reads the sources with `ast`, needs no database."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tests.support import ROOT

DOC = ROOT / "docs" / "journal-format.md"
SOURCES = sorted((ROOT / "ledger").rglob("*.py"))
KIND_HEADING_RE = re.compile(r"^### 5\.\d+ `([^`]+)`[ \t]*$", re.M)

Function = ast.FunctionDef | ast.AsyncFunctionDef


def kind_argument(call: ast.Call) -> ast.expr | None:
    """The expression giving the kind of a journal write, or None if the call is not one.

    `append(kind, payload)` (a list's append takes one argument), `.record(kind, legs,
    details)` and `.post(draft, kind, ...)`; a `.post(draft)` without a kind posts the default
    of `Batch.post`, given here as a constant."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else \
        call.func.id if isinstance(call.func, ast.Name) else None
    keyword = next((k.value for k in call.keywords if k.arg == "kind"), None)
    if name == "append" and len(call.args) == 2:
        return call.args[0]
    if name == "record" and isinstance(call.func, ast.Attribute) and call.args:
        return keyword or call.args[0]
    if name == "post" and isinstance(call.func, ast.Attribute) and call.args:
        if keyword is not None or len(call.args) > 1:
            return keyword or call.args[1]
        return ast.Constant(batch_post_default_kind())
    return None


def batch_post_default_kind() -> str:
    tree = ast.parse((ROOT / "ledger" / "db" / "batch.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "post":
            arguments = node.args.args
            defaults = dict(zip([a.arg for a in arguments[-len(node.args.defaults):]],
                                node.args.defaults, strict=True))
            default = defaults["kind"]
            assert isinstance(default, ast.Constant) and isinstance(default.value, str)
            return default.value
    raise AssertionError("ledger/db/batch.py has no Batch.post")


def literal_kinds(expr: ast.expr, function: Function | None) -> Iterator[str]:
    """Every kind an expression can give: a string, either branch of a conditional, an
    f-string over a name whose assignments give strings, or a local name assigned them.
    A parameter of the enclosing function passes its caller's kind on: it gives none (the
    caller's call is collected where it is). Anything else is an error: a kind this test
    cannot see would escape the documentation check."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        yield expr.value
    elif isinstance(expr, ast.IfExp):
        yield from literal_kinds(expr.body, function)
        yield from literal_kinds(expr.orelse, function)
    elif isinstance(expr, ast.JoinedStr):
        yield from joined_kinds(expr, function)
    elif isinstance(expr, ast.Name) and function is not None:
        if expr.id in parameters(function):
            return
        values = assigned_values(expr.id, function)
        assert values, f"line {expr.lineno}: {expr.id} is never assigned in {function.name}"
        for value in values:
            yield from literal_kinds(value, function)
    else:
        raise AssertionError(f"line {expr.lineno}: cannot tell which kind "
                             f"{ast.unparse(expr)} is")


def joined_kinds(expr: ast.JoinedStr, function: Function | None) -> Iterator[str]:
    texts = [""]
    for part in expr.values:
        if isinstance(part, ast.Constant):
            choices = [str(part.value)]
        else:
            assert isinstance(part, ast.FormattedValue)
            assert part.format_spec is None and part.conversion == -1, ast.unparse(expr)
            choices = list(literal_kinds(part.value, function))
            assert choices, f"line {expr.lineno}: {ast.unparse(expr)} takes no known value"
        texts = [text + choice for text in texts for choice in choices]
    yield from texts


def parameters(function: Function) -> set[str]:
    a = function.args
    return {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs]}


def assigned_values(name: str, function: Function) -> list[ast.expr]:
    return [node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)]


def enclosing_functions(tree: ast.AST) -> dict[ast.Call, Function]:
    """Each call, with the innermost function it is made in."""
    found: dict[ast.Call, Function] = {}

    def visit(node: ast.AST, function: Function | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) \
                else function
            if isinstance(child, ast.Call) and inner is not None:
                found[child] = inner
            visit(child, inner)

    visit(tree, None)
    return found


def kinds_in_code() -> dict[str, list[str]]:
    """Each kind the ledger can journal, with where (file:line) it is written."""
    kinds: dict[str, list[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        functions = enclosing_functions(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            argument = kind_argument(node)
            if argument is None:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for kind in literal_kinds(argument, functions.get(node)):
                kinds.setdefault(kind, []).append(where)
    return kinds


def kinds_documented() -> list[str]:
    section = DOC.read_text(encoding="utf-8").split("\n## 5.", 1)[1].split("\n## 6.", 1)[0]
    return KIND_HEADING_RE.findall(section)


def test_every_journaled_kind_has_its_own_heading_in_the_format_document() -> None:
    found = kinds_in_code()
    # The scan sees each way a kind is written: a string, a name assigned a conditional,
    # an f-string over one, the default kind of Batch.post.
    assert {"account.opened", "merchant.frozen", "merchant.unfrozen", "instruction.accepted",
            "instruction.rejected", "transaction"} <= set(found)
    missing = {kind: places for kind, places in found.items()
               if kind not in kinds_documented()}
    assert not missing, f"kinds journaled but not in docs/journal-format.md §5: {missing}"


def test_every_documented_kind_is_still_journaled_by_the_code() -> None:
    documented = kinds_documented()
    assert len(documented) == len(set(documented)), "a kind has two headings"
    stale = sorted(set(documented) - set(kinds_in_code()))
    assert not stale, f"docs/journal-format.md §5 documents kinds nothing writes: {stale}"
