"""Supervision (监管): the regulators' half of the platform (docs/supervision.md)."""
