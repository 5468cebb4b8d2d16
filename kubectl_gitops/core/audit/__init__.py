"""`kubectl gitops audit`: admission's rules, run over what is already in the cluster (pure).

Admission only sees what passes through it from now on; objects made before the webhook was
installed, during an outage (failurePolicy Ignore), through break-glass or by someone acting as an
applier are only found by looking. Every rule here calls the decision the webhook, the engine or
`kubectl gitops check` makes (no second implementation), so enforcement and audit never disagree.

model.py (findings, rules, results), context.py (the cluster facts), object_rules.py and
cluster_rules.py (the checks), registry.py (the rules in order, and the loops), render.py
(table, JSON, SARIF, JUnit, and the AuditReport objects). The I/O is engine/audit.py.
"""
