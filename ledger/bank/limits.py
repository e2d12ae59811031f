"""Bounds on bank files, named, unit last.

They live here rather than in ledger/limits.py only because this package was written apart from
the core; they are the same kind of thing and may move there.
"""

from typing import Final

# A statement file is refused by size before any parser sees it: a day's custody statement is
# kilobytes to a few megabytes, so 50 MiB leaves room without letting a hostile upload buy
# seconds of CPU and a gigabyte of parse tree.
statement_bytes_max: Final = 50 * 1024 * 1024
# Read a stream in chunks this big, so a file over the limit is refused having read at most
# statement_bytes_max + one chunk.
statement_read_chunk_bytes: Final = 1024 * 1024
# Entries (camt Ntry, MT940 :61:, CSV rows) and transaction details (camt TxDtls) per file.
statement_entries_max: Final = 200_000
statement_details_max: Final = 1_000_000
# Any single text value taken from a statement (a name, a reference, remittance text). ISO 20022
# caps these at 140 characters, MT940 :86: at 6 lines of 65; the slack is for banks that join.
statement_text_chars_max: Final = 2_000
# Columns of an Excel sheet: a bank's statement export has about ten. openpyxl pads a row to
# its widest cell, so one cell in column XFD made 16,384 values a row (a 47 KB file, 2 GB);
# a row with a cell past this is refused before it is unpacked.
xlsx_columns_max: Final = 64
# MT940: lines of text before a message's first field that are no known bank header (a title
# line or two); more is not a header but a file that is not MT940.
mt940_header_lines_max: Final = 8
# MT940 :61: references: SWIFT says 16; banks write IBANs and longer there, up to a line.
mt940_reference_chars_max: Final = 65

# Payment files: instructions per file, and the caller's message id, which must leave room for
# the "-NNNNN" suffix that makes each PmtInfId (ISO Max35Text) unique within the message.
payment_instructions_max: Final = 10_000
payment_message_id_chars_max: Final = 29
