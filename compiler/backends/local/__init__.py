"""The local backend: the generated function's code on this machine, with the spec's limits enforced."""
