"""The in-cluster controller: the engine run continuously, driven by watches (docs/controller.md).

Layered between the entry points (cli, webhook) and the engine: it drives `engine.reconcile.Engine`
through one narrow adapter (`reconciler.py`); the queue, backoff and leader-election rules are pure
modules tested with a fake clock.
"""
