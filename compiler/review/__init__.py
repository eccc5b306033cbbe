"""Review before deploying: the cost plan and the diff between two specs."""
