"""Semantic rules over the resolved model (work in progress)."""

from __future__ import annotations

from compiler.model import App
from runtime.specfile import Diagnostic, SourceDoc


def lint(app: App, doc: SourceDoc) -> list[Diagnostic]:
    return []
