"""Code generation: the IR through templates into the generated Modal module, written atomically."""
