"""Custody rules as pure functions: filing, rules, cards, consumption, release, refund."""
