"""mtc compiler: turns specs/deployment.yaml into a generated Modal app, and the `mtc` CLI around it."""
