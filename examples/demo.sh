#!/usr/bin/env bash
# The main job (README): a real control plane built from Go modules on first use, kubectl-gitops
# installed with its admission webhook, an example Git repository (made now from examples/demo-repo)
# synced in two Syncs (apps depends on infrastructure), and the drift guard refusing a manual edit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${DEMO_CLUSTER:-demo}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dev control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) + webhook"
kubectl gitops dev up --name "$name" --webhook
KUBECONFIG="$(kubectl gitops dev kubeconfig --name "$name" --path)"
export KUBECONFIG
kubectl gitops check

step "an example Git repository, made from examples/demo-repo"
repo="$(mktemp -d)/demo-repo"
cp -r "$here/demo-repo" "$repo"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -q -m "demo: podinfo"
echo "repository: $repo ($(git -C "$repo" rev-parse --short HEAD))"

step "GitSource and Syncs"
kubectl create namespace gitops-demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl gitops -n gitops-demo create source demo --url "file://$repo" --branch main
kubectl gitops -n gitops-demo create sync infrastructure --source demo --path infrastructure --prune
kubectl gitops -n gitops-demo create sync apps --source demo --path apps/podinfo --prune --wait \
  --timeout 2m --depends-on infrastructure --substitute CLUSTER_NAME="$name"

step "sync (infrastructure first: apps depends on it)"
kubectl gitops -n gitops-demo sync infrastructure
kubectl gitops -n gitops-demo sync apps

step "kubectl gitops get syncs"
kubectl gitops get syncs -A
kubectl -n podinfo get deployment,service,configmap,featureflags

step "the drift guard refuses an out-of-band edit"
if kubectl -n podinfo scale deployment podinfo --replicas=5; then
  echo "UNEXPECTED: the edit was allowed" >&2
  exit 1
fi

step "done"
echo "Try it yourself:  export KUBECONFIG=$KUBECONFIG"
echo "Stop everything:  kubectl gitops dev down --name $name"
