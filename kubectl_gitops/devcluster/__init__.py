"""The local throwaway control plane (`kubectl gitops dev ...`): build, PKI, processes."""
