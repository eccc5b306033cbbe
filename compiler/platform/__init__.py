"""Platform facts: Modal's limits, the GPU catalog and the price table."""
