"""Shared pytest configuration; fixtures live in tests/support/."""
