"""Semantic rules over the resolved model: Modal's limits, references, and mistakes that cost GPU hours.

Every rule has a stable id, a severity, a one-line summary and a fix; the rule table of
``docs/readme/spec-reference.md`` repeats them (a test keeps the two equal). :mod:`compiler.lint.registry`
defines how a rule is declared and run; each family of rules lives in its own module, imported below, so
importing ``compiler.lint`` registers every rule:

- ``functions``: function and argument names, schedules, profiles' function names, ``lint.ignore``;
- ``resources``: GPUs, CPU, memory, timeout, preemption and scaling within Modal's limits;
- ``volumes``: volume references, mount paths, bucket prefixes, somewhere to keep checkpoints;
- ``images``: image references, bases, CUDA builds, the local files and packages an image ships;
- ``pipsteps``: pip and uv_pip steps list requirements, their options go to their keys;
- ``secrets``: each secret reaches a function once;
- ``packages``: every package the run target's code imports is installed in its image;
- ``targets``: the ``run`` target exists, ships in the image, and takes the ``args``;
- ``training``, ``datasize`` and ``edf``: the training config named in ``args`` against its function;
- ``sweeps``: a function's ``sweep:``;
- ``clusters``: a function's ``cluster:`` (size, whole GPU hosts, container counts).
- ``serving``: classes, web endpoints and input concurrency.

Helpers shared by the families: ``shared`` (container paths, mounts), ``configs`` (the training config),
``imports`` (what a module imports, cached per file content).
"""

from __future__ import annotations

from compiler.lint.registry import ERROR, RULES, WARNING, LintContext, Rule, lint, rule

# isort: split
# the rule families, registered by importing them (after the registry, which they import); one line each
from compiler.lint import (
    clusters,  # noqa: F401
    datasize,  # noqa: F401
    edf,  # noqa: F401
    functions,  # noqa: F401
    images,  # noqa: F401
    names,  # noqa: F401
    packages,  # noqa: F401
    pipsteps,  # noqa: F401
    resources,  # noqa: F401
    secrets,  # noqa: F401
    serving,  # noqa: F401
    sweeps,  # noqa: F401
    targets,  # noqa: F401
    training,  # noqa: F401
    volumes,  # noqa: F401
)

__all__ = ["ERROR", "RULES", "WARNING", "LintContext", "Rule", "lint", "rule"]
