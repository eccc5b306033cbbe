"""The light shared core (no torch, numpy or modal): diagnostics, file reading and writing, the
positioned YAML loader and schema checks. Imported by the compiler and shipped to Modal with the runtime."""
