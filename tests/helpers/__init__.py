"""Helpers shared by the tests: the CLI runner, checks of generated modules, a tiny training config, a
scratch copy of the repository."""
