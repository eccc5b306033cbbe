"""Images built on other images (``base: NAME``): the order the module defines them in, and cycles.

An image's ``base`` names its parent; the generated module defines every parent before its children, in
the spec's order otherwise. A chain of parents that comes back to where it started is a cycle: the lint's
``image-base`` reports it, and :func:`image_order` leaves its images out rather than loop.
"""

from __future__ import annotations

from compiler.spec.ir import App


def parents_of(app: App, name: str) -> list[str]:
    """The declared images ``name`` continues, nearest first; stops at an undeclared name or a cycle."""
    found: list[str] = []
    parent = app.images[name].parent if name in app.images else None
    while parent is not None and parent in app.images and parent not in found and parent != name:
        found.append(parent)
        parent = app.images[parent].parent
    return found


def in_cycle(app: App, name: str) -> bool:
    """Whether following ``name``'s parents leads back to ``name``."""
    chain = parents_of(app, name)
    last = chain[-1] if chain else name
    return app.images[last].parent == name if name in app.images else False


def image_order(app: App) -> list[str]:
    """Every image not in or below a cycle, each after its parents, otherwise in declared order."""
    ordered: list[str] = []
    for name in app.images:
        lineage = [*reversed(parents_of(app, name)), name]
        if any(in_cycle(app, member) for member in lineage):
            continue
        for ancestor in lineage:
            if ancestor not in ordered:
                ordered.append(ancestor)
    return ordered


def children_of(app: App, name: str) -> list[str]:
    """The images whose ``base`` is ``name``."""
    return [child for child, image in app.images.items() if image.parent == name]


def adds_local(app: App, name: str) -> bool:
    """Whether image ``name``, with what its parents bring, adds local files."""
    image = app.effective_image(name)
    return image is not None and image.has_local
