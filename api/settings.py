"""Settings from the environment, with the embedded PostgreSQL as the default database."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from api.ratelimit import RateLimits


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(os.environ.get("YUFU_HOME", ".yufu")))
    database_url: str | None = field(
        default_factory=lambda: os.environ.get("YUFU_DATABASE_URL") or None)
    # The owner's URL on that server: migrations and the service role's grants
    # (docs/database.md). Unset, they run with YUFU_DATABASE_URL, and the roles are not split.
    migration_database_url: str | None = field(
        default_factory=lambda: os.environ.get("YUFU_MIGRATION_DATABASE_URL") or None)
    host: str = field(default_factory=lambda: os.environ.get("YUFU_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("YUFU_PORT", "8000")))
    # The key that turns phone numbers into pseudonymous consumer ids; generated at first start.
    pseudonym_key_file: Path | None = None
    # The Ed25519 key that signs tree heads: this PEM file, else YUFU_HOME/audit-ed25519.pem
    # (made at first start). A key other than the one of the latest stored head is refused
    # unless YUFU_AUDIT_KEY_ROTATE=1 (auditors pin the key; see docs/audit.md).
    audit_key_file: Path | None = field(default_factory=lambda: _path_or_none(
        os.environ.get("YUFU_AUDIT_KEY_FILE")))
    # HTTP worker processes: 1 keeps everything in one process (simplest to debug).
    workers: int = field(default_factory=lambda: int(os.environ.get("YUFU_WORKERS", "1")))
    audit_key_rotate: bool = field(
        default_factory=lambda: os.environ.get("YUFU_AUDIT_KEY_ROTATE") == "1")
    # Per worker process (api/ratelimit.py): YUFU_KEY_RATE_PER_S, YUFU_KEY_BURST,
    # YUFU_FAILED_AUTH_RATE_PER_S, YUFU_FAILED_AUTH_BURST; a rate of 0 switches one off.
    rate_limits: RateLimits = field(default_factory=lambda: rate_limits_from(os.environ))
    # Bank profiles of the operator's (api/profiles.py), beside the shipped ones: a directory
    # of JSON files, each read at start; a broken one stops the start.
    bank_profiles_dir: Path | None = field(default_factory=lambda: _path_or_none(
        os.environ.get("YUFU_BANK_PROFILES_DIR")))


def rate_limits_from(env: Mapping[str, str]) -> RateLimits:
    default = RateLimits()
    return RateLimits(
        float(env.get("YUFU_KEY_RATE_PER_S", default.key_rate_per_s)),
        int(env.get("YUFU_KEY_BURST", default.key_burst)),
        float(env.get("YUFU_FAILED_AUTH_RATE_PER_S", default.failed_auth_rate_per_s)),
        int(env.get("YUFU_FAILED_AUTH_BURST", default.failed_auth_burst)),
        float(env.get("YUFU_CODE_RATE_PER_S", default.code_rate_per_s)),
        int(env.get("YUFU_CODE_BURST", default.code_burst)),
        float(env.get("YUFU_LOOKUP_RATE_PER_S", default.lookup_rate_per_s)),
        int(env.get("YUFU_LOOKUP_BURST", default.lookup_burst)))


def _path_or_none(value: str | None) -> Path | None:
    return Path(value) if value else None


def embedded_settings() -> dict[str, str]:
    """Server settings for the embedded cluster: durable, sized for a 2-core machine."""
    return {"max_connections": "100", "shared_buffers": "256MB", "wal_buffers": "16MB",
            "max_wal_size": "2GB", "checkpoint_timeout": "15min"}
