"""The guard rails of scripts/test (docs/design.md, "Guard rails"): the layering check fails on
a new violation, its list of the pure core names every core module, no production file is
longer than a limit; and tests/ mirrors the code, its modules importing only tests/support.

The layering check is import-linter, run by scripts/test on the real code. Here it runs on a
copy of ledger/ and api/ with the repository's own contracts: the copy as it is passes, and
one new violating import per contract breaks that contract, naming the import."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

PRODUCTION = ("ledger", "api")
file_lines_max = 500
lint_timeout_s = 120
# One new import per contract, each in a module that does not have it today.
VIOLATIONS = {
    "core": ("ledger/money.py", "import sqlalchemy", "ledger.money -> sqlalchemy"),
    "use-cases": ("ledger/flows/sales.py", "from ledger.db import custody_tables",
                  "ledger.flows.sales -> ledger.db.custody_tables"),
    "api": ("api/routes/ledger.py", "from ledger.db import custody_store",
            "api.routes.ledger -> ledger.db.custody_store"),
}


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts, on the packages under `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(script), "--no-cache", "--no-logo", str(tree / "pyproject.toml")],
                          cwd=tree, env=env, capture_output=True, text=True,
                          timeout=lint_timeout_s, check=False)


@pytest.fixture
def code_copy(tmp_path: Path) -> Path:
    """ledger/, api/ and pyproject.toml, copied as they are."""
    for package in PRODUCTION:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layering_check_passes_on_the_code_as_it_is(code_copy: Path) -> None:
    result = lint_imports(code_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts())} kept, 0 broken." in result.stdout, result.stdout


def test_the_layering_check_fails_on_a_new_violation_of_each_contract(code_copy: Path) -> None:
    for module, statement, _ in VIOLATIONS.values():
        path = code_copy / module
        assert statement not in path.read_text(encoding="utf-8")
        path.write_text(path.read_text(encoding="utf-8") + f"\n{statement}  # noqa\n",
                        encoding="utf-8")
    result = lint_imports(code_copy)
    assert result.returncode != 0, result.stdout
    assert f"Contracts: 0 kept, {len(VIOLATIONS)} broken." in result.stdout, result.stdout
    for contract_id, (module, _, chain) in VIOLATIONS.items():
        assert f"{contracts()[contract_id]['name']} BROKEN" in result.stdout, result.stdout
        last_line = len((code_copy / module).read_text(encoding="utf-8").splitlines())
        assert f"{chain} (l.{last_line})" in result.stdout, result.stdout


def test_the_core_contract_names_every_module_of_the_core() -> None:
    """Every module and package of ledger/ is the core's, but ledger/db and the use cases
    (ledger/flows, ledger/service.py and ledger/*_service.py): a new core module is under the
    contract the day it is added."""
    found = {f"ledger.{p.stem}" for p in (ROOT / "ledger").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    use_cases = {m for m in found
                 if m in ("ledger.service", "ledger.flows") or m.endswith("_service")}
    assert use_cases == set(contracts()["use-cases"]["source_modules"])
    assert set(contracts()["core"]["source_modules"]) == found - use_cases - {"ledger.db"}


def test_no_production_file_is_longer_than_the_limit() -> None:
    lengths = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
               for package in PRODUCTION for p in sorted((ROOT / package).rglob("*.py"))}
    assert lengths
    oversize = {path for path, lines in lengths.items() if lines > file_lines_max}
    assert oversize == set(), {p: lengths[p] for p in oversize}


def test_no_test_module_imports_another() -> None:
    """Of tests/, only tests/support is imported (pytest finds the conftest.py files itself)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["." * node.level]
                if node.module == "tests":
                    names = [f"tests.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            wrong = [n for n in names if n.startswith(".") or (
                n.split(".")[0] == "tests" and n != "tests.support"
                and not n.startswith("tests.support."))]
            if wrong:
                found.setdefault(str(path.relative_to(ROOT)), []).extend(wrong)
    assert found == {}


def test_every_test_folder_mirrors_a_package_or_module() -> None:
    """tests/ledger/custody/ is for ledger/custody/, tests/ledger/audit/ for ledger/audit.py
    (and its use cases, ledger/audit_service.py), and so on; tests/support holds no tests."""
    for folder in sorted(p for p in (ROOT / "tests").rglob("*") if p.is_dir()):
        relative = folder.relative_to(ROOT / "tests")
        if folder.name in ("__pycache__", "samples") or relative.parts[0] == "support":
            continue
        code = ROOT / relative
        assert code.is_dir() or code.with_suffix(".py").is_file(), relative
    assert not list((ROOT / "tests" / "support").glob("test_*.py"))
