#!/usr/bin/env bash
# The main job: a real control plane, built from Go modules on first use, and the plugin against it.
set -euo pipefail
kubectl gitops dev up
KUBECONFIG="$(kubectl gitops dev kubeconfig --path)"
export KUBECONFIG
kubectl gitops check
kubectl get nodes
