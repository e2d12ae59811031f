"""A dry run says what an import of the same bytes would do (docs/banks.md, "See what was
read"), for a file received before too: from another bank, refused; from this bank, each
statement as the import would name it."""

from __future__ import annotations

from datetime import date

from tests.support.driver import Banking
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 12, 7)


def _dry(banking: Banking, bank_id: str, data: bytes) -> dict:  # type: ignore[type-arg]
    answer = banking.client.post(f"/v1/banks/{bank_id}/statements", content=data,
                                 headers=banking.bank(bank_id), params={"dry_run": "true"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_dry_run_of_another_banks_file_says_it_would_be_refused(banking: Banking) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-R2-A")
    banking.bank("BANK-R2-B")  # its own merchant on the same number (numbers are per bank)
    banking.file("体育健身", "BANK-R2-B", custody_account=m.account)
    data = camt053([Stmt(m.account, "1", 0, DAY, (entry("CRDT", 100, DAY),))],
                   message_id="R2-OTHER")
    banking.import_file("BANK-R2-A", data)

    real = banking.post_statement("BANK-R2-B", data)
    assert real.status_code == 409, real.text
    assert _dry(banking, "BANK-R2-B", data)["file_refused"] is not None


def test_a_dry_run_of_a_file_sent_before_says_what_sending_it_again_does(
        banking: Banking) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-R2-C")
    unfiled = f"62{banking.rng.randrange(10**14):014d}"
    data = camt053([Stmt(m.account, "1", 0, DAY, (entry("CRDT", 100, DAY),)),
                    Stmt(unfiled, "2", 0, DAY, (entry("CRDT", 200, DAY),))],
                   message_id="R2-AGAIN")
    first = banking.import_file("BANK-R2-C", data)
    assert [s["status"] for s in first["statements"]] == ["imported", "refused"]
    banking.file("体育健身", "BANK-R2-C", custody_account=unfiled)

    dry = [s["import"]["status"] for s in _dry(banking, "BANK-R2-C", data)["statements"]]
    again = [s["status"] for s in banking.import_file("BANK-R2-C", data)["statements"]]
    assert again == ["already_imported", "refused"]
    assert dry == again
