"""The shipped industry -> supervising-department maps, one JSON file per jurisdiction
(ledger/custody/departments.py reads their shape; api/department_maps.py reads the files)."""
