"""Click commands of the `mtc` CLI, one module per group of verbs."""
