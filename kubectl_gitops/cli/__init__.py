"""The `kubectl gitops` command line: one module per subcommand, rendering at the edge."""
