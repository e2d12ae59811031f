"""Partner-bank integration, the pure layer: statements in (camt.053, camt.054, MT940, CSV),
payment files out (pain.001, CSV). No database, no HTTP, no file system: bytes in, values out.

Public API: `ledger.bank.statements` (the model, the parsers, `detect_and_parse`) and
`ledger.bank.payments` (`PaymentInstruction`, `build_pain001`, `build_payment_csv`).
Reconciliation's states and records are `ledger.bank.reconciliation`; what its commands
(ledger/flows/statements.py, instructions.py) may read and write is `ledger.bank.store`.
The formats and the hostile-input rules are in docs/bank-formats.md.
"""
