"""The pure core: no I/O and no kubernetes, flask, click or git imports (checked by import-linter)."""
