"""The spec front end: load, validate and resolve deployment.yaml into the IR."""
