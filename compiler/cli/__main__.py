"""``python -m compiler.cli``: the same as the ``mtc`` command."""

from compiler.cli import main

if __name__ == "__main__":
    main()
