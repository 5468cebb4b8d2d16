"""The reconcile engine: orchestrates adapters over the pure core, step by named step.

Used by the CLI (`kubectl gitops sync`) and by the in-cluster controller alike; it sits between
the entry points and the adapters (import-linter enforces that order).
"""
