"""kubectl-gitops: GitOps from Git to Kubernetes as a kubectl plugin and admission webhook.

Kept import-free so that `kubectl gitops --help` starts fast: every heavy module
(kubernetes, git, cryptography, flask) is imported only by the command that needs it.
"""

__version__ = "0.1.0"
