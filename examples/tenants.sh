#!/usr/bin/env bash
# Two teams on one cluster (docs/tenancy.md, "Syncing as a tenant"). The platform team creates
# the tenants (namespaces, a locked-down applier each, RBAC, people); each team has its own Git
# repository (made now from examples/tenants/team-*) and creates its own GitSource and Sync with
# its own credentials; the platform's engine syncs them, each as its tenant's applier. Then team
# A's repository tries to escape (cluster-admin, the other team's namespace) and is refused as a
# whole, and team A's person can neither impersonate the applier nor mint its token.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${DEMO_CLUSTER:-demo-tenants}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dev control plane and kubectl-gitops (CRDs, RBAC)"
kubectl gitops dev up --name "$name"
KUBECONFIG="$(kubectl gitops dev kubeconfig --name "$name" --path)"
export KUBECONFIG
kubectl gitops install --no-webhook

step "one Git repository per team, made from examples/tenants/team-a and team-b"
work="$(mktemp -d)"
for team in team-a team-b; do
  cp -r "$here/tenants/$team" "$work/$team"
  git -C "$work/$team" init -q -b main
  git -C "$work/$team" add -A
  git -C "$work/$team" -c user.name=demo -c user.email=demo@example.com commit -q -m "$team: apps"
  # Each team gets a kubeconfig of its own: a person of the team (user $team-dev, group $team).
  kubectl gitops dev kubeconfig --name "$name" --user "$team-dev" --group "$team" > "$work/$team.kubeconfig"
done

step "the platform creates the tenants"
for team in team-a team-b; do
  kubectl gitops create tenant "$team" --namespace "$team" --user "$team-dev" --group "$team" \
    --source-url "file://$work/$team"
done
kubectl gitops get tenants -o wide

step "each team creates its GitSource and Sync, with its own credentials"
for team in team-a team-b; do
  k="$work/$team.kubeconfig"
  kubectl gitops --kubeconfig "$k" -n "$team" create source apps --url "file://$work/$team" --branch main
  kubectl gitops --kubeconfig "$k" -n "$team" create sync apps --source apps --path apps --prune \
    --service-account "tenant-$team-applier"
done

step "the platform's engine syncs them, each as its tenant's applier"
kubectl gitops -n team-a sync apps
kubectl gitops -n team-b sync apps
kubectl -n team-a get deployment,configmap,rolebinding -l kubectl-gitops.dev/sync=apps

step "team A's repository tries to escape: refused as a whole, rules named"
k="$work/team-a.kubeconfig"
kubectl gitops --kubeconfig "$k" -n team-a create sync escape --source apps --path escape \
  --service-account tenant-team-a-applier
if kubectl gitops -n team-a sync escape; then
  echo "UNEXPECTED: the escape was applied" >&2
  exit 1
fi
if kubectl get clusterrolebinding team-a-is-cluster-admin 2>/dev/null \
   || kubectl -n team-b get configmap planted-by-team-a 2>/dev/null; then
  echo "UNEXPECTED: something of the escape reached the cluster" >&2
  exit 1
fi
echo "nothing of it reached the cluster"

step "a Sync that doesn't name its tenant's applier is refused before anything is fetched"
kubectl gitops --kubeconfig "$k" -n team-a create sync as-default --source apps --path apps
if kubectl gitops -n team-a sync as-default; then
  echo "UNEXPECTED: a tenant's Sync ran as the default applier" >&2
  exit 1
fi

step "team A's person can't become the applier"
if kubectl --kubeconfig "$k" -n team-a get pods --as system:serviceaccount:kubectl-gitops-system:tenant-team-a-applier; then
  echo "UNEXPECTED: impersonation allowed" >&2
  exit 1
fi
if kubectl --kubeconfig "$k" -n kubectl-gitops-system create token tenant-team-a-applier; then
  echo "UNEXPECTED: a token was minted" >&2
  exit 1
fi

step "kubectl gitops get tenants"
kubectl gitops get tenants

step "done"
echo "Try it yourself:  export KUBECONFIG=$KUBECONFIG   (team kubeconfigs in $work)"
echo "Stop everything:  kubectl gitops dev down --name $name"
