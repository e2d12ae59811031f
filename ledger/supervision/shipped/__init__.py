"""The supervision rules shipped with Yufu (ledger/supervision/thresholds.py): data."""
