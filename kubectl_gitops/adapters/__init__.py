"""Thin I/O adapters: kube (the only API client), git, keys/pki, render (the only subprocess)."""
