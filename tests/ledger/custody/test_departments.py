"""The department maps (ledger/custody/departments.py): pure, no database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.department_maps import shipped_department_maps
from ledger.custody.departments import (
    DepartmentMap,
    parse_department_map,
    parse_shipped_map,
)
from ledger.errors import InvalidInput

names = st.text(st.characters(categories=["Lo", "Nd"]), min_size=1, max_size=8)
maps = st.builds(DepartmentMap, st.just("beijing"), st.dictionaries(names, names, max_size=20),
                 names)


@given(maps, names, names)
def test_a_designation_names_its_industry_and_changes_no_other(
        department_map: DepartmentMap, industry: str, department: str) -> None:
    designated = department_map.designating(industry, department)
    assert designated.department_for(industry) == (department, False)
    for other, supervisor in department_map.departments.items():
        if other != industry:
            assert designated.department_for(other) == (supervisor, False)
    assert designated.pending_department == department_map.pending_department


@given(maps, names)
def test_an_industry_the_map_does_not_name_goes_to_the_pending_department(
        department_map: DepartmentMap, industry: str) -> None:
    department, pending = department_map.department_for(industry)
    assert pending == (industry not in department_map.departments)
    if pending:
        assert department == department_map.pending_department


@given(maps)
def test_a_map_reads_back_as_it_was_published(department_map: DepartmentMap) -> None:
    assert parse_department_map(department_map.as_dict()) == department_map
    journaled = department_map.journaled()["departments"]
    assert {p["industry"]: p["department"] for p in journaled} == department_map.departments


def test_every_shipped_map_is_valid_and_names_its_seed() -> None:
    shipped = {m.jurisdiction: (m, source) for m, source in shipped_department_maps()}
    assert set(shipped) == {"beijing", "tianjin"}
    assert "seed 000" in shipped["beijing"][1] and "seed 002" in shipped["tianjin"][1]
    assert shipped["beijing"][0].department_for("体育健身") == ("区文旅体局", False)
    assert shipped["tianjin"][0].department_for("体育健身") == ("区市场监管局", True)


@pytest.mark.parametrize(("raw", "field"), [
    ({"pending_department": "区市监局", "departments": {}}, "jurisdiction"),
    ({"jurisdiction": "x", "departments": {}}, "pending_department"),
    ({"jurisdiction": "x", "pending_department": "p", "departments": []}, "departments"),
    ({"jurisdiction": "x", "pending_department": "p", "departments": {"餐饮": ""}},
     "departments.餐饮"),
    ({"jurisdiction": "x", "pending_department": "p",
      "departments": {"餐饮": "a", " 餐饮 ": "b"}}, "departments.餐饮"),
])
def test_a_map_that_is_not_one_is_refused_naming_the_field(raw: dict[str, Any],
                                                           field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_department_map(raw)
    assert refused.value.field == field


def test_a_shipped_file_with_an_industry_under_two_departments_is_refused() -> None:
    with pytest.raises(InvalidInput, match="under"):
        parse_shipped_map({"jurisdiction": "x", "pending_department": "p",
                           "departments": {"a": ["餐饮"], "b": ["餐饮"]}})
