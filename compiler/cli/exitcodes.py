"""The exit codes of ``mtc``, stable for scripts and CI: 0 ok, 1 the input is wrong (diagnostics printed),
2 ``compile --check`` or ``diff`` found a difference, 3 usage error. ``mtc run`` passes on the function's own
exit code (124 timeout, 137 memory)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INVALID = 1
    DIFFERENT = 2
    USAGE = 3
