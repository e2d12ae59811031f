"""Bank profiles through the API and the service's start: a Chinese bank's GB18030 CSV and
its Excel export imported and matched against a card sale; GET /v1/bank-profiles; a broken
profile file stops the start naming itself."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.app import create_app
from api.profiles import ProfileFileError, load_profiles
from tests.support import ROOT
from tests.support.bank import deposit
from tests.support.bank_exports import Line, generic_rows, generic_xlsx, to_csv
from tests.support.driver import Banking

DAY = date(2026, 12, 7)


def test_a_gb18030_bank_csv_is_imported_and_matched(banking: Banking, engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant("ICBC-CN")
    sale = banking.sell_at(m, 88_800)
    data = to_csv(generic_rows(m.account, 0, [
        Line(DAY, 88_800, summary="网银转账", purpose=f"{sale['reference']} 会员卡款"),
        Line(DAY, 1_234, summary="利息")]), "gb18030")
    data.decode("gb18030")  # really GB18030: not UTF-8
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")

    body = banking.import_file("ICBC-CN", data, filename="账户明细.csv")

    [statement] = body["statements"]
    assert statement["statement_id"] == f"{m.account}:2026-12-07..2026-12-07"
    assert statement["outcome"] == {"deposit": 1, "break": 1}
    assert deposit(engine, sale["reference"]) == ("cleared", 0)
    verified = statement["cross_verification"]
    assert (verified["bank_balance_fen"], verified["closing_date"]) == (90_034, "2026-12-07")


def test_an_excel_export_is_imported_by_the_profile_named(banking: Banking,
                                                          engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant("CCB-CN")
    sale = banking.sell_at(m, 12_345)
    data = generic_xlsx(m.account, 0, [Line(DAY, 12_345, summary=sale["reference"])])

    response = banking.client.post("/v1/banks/CCB-CN/statements", headers=banking.bank("CCB-CN"),
                                   params={"filename": "明细.xlsx",
                                           "profile": "cn-generic-xlsx"}, content=data)

    assert response.status_code == 201, response.text
    [statement] = response.json()["statements"]
    assert statement["outcome"] == {"deposit": 1}
    assert statement["cross_verification"]["result"] == "match"
    assert deposit(engine, sale["reference"]) == ("cleared", 0)


def test_an_unknown_profile_or_an_unread_workbook_is_a_422_naming_it(banking: Banking) -> None:
    m = banking.merchant("CCB-CN")
    data = generic_xlsx(m.account, 0, [Line(DAY, 1, summary="x")])
    unknown = banking.client.post("/v1/banks/CCB-CN/statements", headers=banking.bank("CCB-CN"),
                                  params={"profile": "no-such-bank"}, content=data)
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "profile" and "cn-generic" in unknown.json()["detail"]

    wrong = banking.client.post("/v1/banks/CCB-CN/statements", headers=banking.bank("CCB-CN"),
                                params={"profile": "cn-generic"}, content=data)
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["field"] == "profile"
    assert "an Excel workbook, and profile cn-generic reads CSV" in wrong.json()["detail"]


def test_the_profiles_are_listed_to_any_key(banking: Banking) -> None:
    m = banking.merchant("ICBC-CN")
    for headers in [banking.operator, banking.bank("ICBC-CN"), m.key]:
        body = banking.ok("GET", "/v1/bank-profiles", headers)
        named = {p["name"]: p for p in body["items"]}
        assert {"yufu-csv", "cn-generic", "cn-generic-xlsx", "cn-signed"} <= set(named)
    generic = named["cn-generic"]
    assert (generic["format"], generic["encoding"]) == ("csv", "gb18030")
    assert generic["columns"]["debit"][0] == "借方发生额"
    assert named["cn-signed"]["columns"]["direction"] == ["借贷标志", "借贷方向"]
    assert banking.client.get("/v1/bank-profiles").status_code == 401


def test_an_operators_profile_is_loaded_beside_the_shipped(tmp_path: Path) -> None:
    (tmp_path / "my-bank.json").write_text(json.dumps({
        "name": "my-bank", "bank": "某农商银行", "format": "csv", "encoding": "gbk",
        "columns": {"booking_date": "日期", "amount": "金额"}}), "utf-8")
    profiles = load_profiles(tmp_path)
    assert profiles["my-bank"].bank == "某农商银行" and "cn-generic" in profiles


@pytest.mark.parametrize(("text", "says"), [
    ("{not json", "not JSON in UTF-8"),
    ("[]", "a JSON object is required"),
    (json.dumps({"name": "broken", "bank": "b", "format": "csv",
                 "columns": {"amount": "金额"}}), "columns: booking_date is required"),
    (json.dumps({"name": "cn-generic", "bank": "b", "format": "csv", "reader": "yufu-csv"}),
     "the name 'cn-generic' is taken"),
])
def test_a_broken_profile_file_stops_the_start_naming_it(tmp_path: Path, engine: Engine,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         text: str, says: str) -> None:
    (tmp_path / "broken.json").write_text(text, "utf-8")
    monkeypatch.setenv("YUFU_BANK_PROFILES_DIR", str(tmp_path))
    with pytest.raises(ProfileFileError) as caught:
        create_app(engine)
    assert f"bank profile {tmp_path / 'broken.json'}: " in str(caught.value)
    assert says in str(caught.value)


def test_a_profiles_directory_that_is_not_there_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ProfileFileError, match="not a directory"):
        load_profiles(tmp_path / "missing")


def test_yufu_reconcile_import_takes_a_profile(banking: Banking, engine: Engine,
                                               database_env: dict[str, str],
                                               tmp_path: Path) -> None:
    banking.set_today(DAY)
    m = banking.merchant("CMB-CLI")
    sale = banking.sell_at(m, 5_000)
    export = tmp_path / "明细.xlsx"
    export.write_bytes(generic_xlsx(m.account, 0, [Line(DAY, 5_000,
                                                         summary=sale["reference"])]))
    env = {**os.environ, **database_env, "YUFU_HOME": str(tmp_path)}

    def reconcile(*more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/yufu"), "reconcile", "import",
                               str(export), "--bank", "CMB-CLI", *more], env=env,
                              capture_output=True, text=True, check=False, timeout=120)

    unknown = reconcile("--profile", "no-such-bank")
    assert unknown.returncode == 2 and "no bank profile 'no-such-bank'" in unknown.stderr
    done = reconcile("--profile", "cn-generic-xlsx")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["statements"]
    assert result["outcome"] == {"deposit": 1}
    assert deposit(engine, sale["reference"]) == ("cleared", 0)
