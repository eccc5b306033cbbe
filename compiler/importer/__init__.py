"""``mtc import``: read a hand-written Modal app statically (its ``ast``: the user's code is never executed)
and write a spec that compiles to the same functions, plus a plain module holding the functions' bodies.

One module per concern: :mod:`.values` evaluates constant expressions, :mod:`.images` reads image chains,
:mod:`.storage` volumes, buckets and secrets, :mod:`.functions` the ``@app.function`` decorators,
:mod:`.bodies` moves the bodies into the jobs module, :mod:`.yamlout` writes the YAML with its comments,
and :mod:`.reader` walks the module and ties them together. Whatever cannot be read becomes a
:class:`.notes.Note`: a warning with the original's line, and a ``# mtc import: ...`` comment in the spec.
"""
