"""The admission webhook (import name `kubectl_gitops_webhook`): a thin Flask adapter over the core's
pure `review(request) -> response`. Nothing here decides; it parses, calls the core, and answers.
"""
