"""The consumer's own credential: one-time codes sent to the phone (or external id) a card
was sold to. Pure: the database keeps only the codes' keyed hashes.

A code proves control of the number at the moment it is used, nothing more, so it is short
lived, tried a few times at most, and asked for a few times an hour at most per consumer;
the client address is limited too (api/), so nobody can walk the code space.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Final

from ledger.errors import InvalidInput

code_digits: Final = 6
code_ttl_s: Final = 300
# Wrong codes tried against one code before it is spent: 5 in 10**6 is the chance to guess.
code_attempts_max: Final = 5
# Codes sent to one consumer per window (SMS costs money and annoys the cardholder).
codes_per_consumer_max: Final = 5
codes_window_s: Final = 3600
# A consumer's key lives this long; a new code gives a new key.
consumer_key_ttl_days: Final = 30


def new_code() -> str:
    return f"{secrets.randbelow(10**code_digits):0{code_digits}d}"


def code_hash(secret: bytes, consumer_id: str, code: str) -> bytes:
    """Keyed, and bound to the consumer: a stolen table of hashes gives no code away, and a
    code sent to one consumer proves nothing for another."""
    return hmac.new(secret, f"{consumer_id}:{code}".encode(), hashlib.sha256).digest()


def code_matches(secret: bytes, consumer_id: str, code: str, stored: bytes) -> bool:
    return hmac.compare_digest(code_hash(secret, consumer_id, code), stored)


def check_code_format(code: str) -> str:
    if len(code) != code_digits or not code.isascii() or not code.isdigit():
        raise InvalidInput(f"a one-time code is {code_digits} digits", field="code")
    return code


def code_expiry(now: datetime) -> datetime:
    return now + timedelta(seconds=code_ttl_s)


def key_expiry(now: datetime) -> datetime:
    return now + timedelta(days=consumer_key_ttl_days)


def message_text(code: str) -> str:
    minutes = code_ttl_s // 60
    return (f"【预付管家】您的验证码是 {code}，{minutes} 分钟内有效。请勿告诉任何人，"
            f"包括商家。Your Yufu code is {code}; it expires in {minutes} minutes. "
            f"Never give it to the merchant.")
