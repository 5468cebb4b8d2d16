"""Shared pytest setup: the repo root on sys.path-independent helpers live in tests/helpers.py."""
