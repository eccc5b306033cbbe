"""``mtc import APP.py``: turn a hand-written Modal app into a spec (and a jobs module with its functions'
bodies), reading the file statically: the app's code is never executed.

Exit 0 when everything was carried over, 1 when something was left as a ``# mtc import: ...`` comment (one
warning per item, with the app file's line) or the file is not a Modal app mtc can read, 3 on usage errors
(an output that exists without ``--force``). Both files are written atomically, the jobs module first.
"""

from __future__ import annotations

from pathlib import Path

import click

from compiler.cli.exitcodes import ExitCode

HEADER = (
    "# Imported from {source} by `mtc import`. Review it (every `# mtc import:` comment marks something not\n"
    "# carried over), then `mtc lint`, `mtc plan` and `mtc compile`.\n"
)


@click.command(name="import")
@click.argument("app_file", metavar="APP.py", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    default="specs/deployment.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The spec to write; the jobs module goes beside it.",
)
@click.option("--force", is_flag=True, help="Replace an existing spec or jobs module.")
def import_(app_file: Path, output: Path, force: bool) -> int:
    """Write a spec from the Modal app APP.py (read, never run)."""
    from compiler.codegen.emit import UnsafeTarget, write_atomic
    from compiler.importer.reader import ImportError_, import_app
    from compiler.importer.yamlout import to_yaml

    try:
        imported = import_app(app_file, output.parent)
    except ImportError_ as exc:
        click.echo(f"mtc import: error: {exc}", err=True)
        return ExitCode.INVALID
    jobs = output.parent / f"{imported.jobs_module}.py" if imported.jobs_module else None
    existing = [path for path in (output, jobs) if path is not None and path.exists()]
    if existing and not force:
        names = ", ".join(str(path) for path in existing)
        click.echo(f"mtc import: error: {names} exists: pass --force to replace it", err=True)
        return ExitCode.USAGE
    text = to_yaml(imported.spec, imported.comments, HEADER.format(source=app_file.name))
    try:
        if jobs is not None:
            write_atomic(jobs, imported.jobs_source)
        write_atomic(output, text)
    except (UnsafeTarget, OSError) as exc:
        click.echo(f"mtc import: error: cannot write {output}: {exc}", err=True)
        return ExitCode.INVALID
    for note in imported.notes.sorted():
        click.echo(f"{app_file}:{note.line}: warning: {note.message} [import]", err=True)
    written = f"{output} and {jobs}" if jobs else str(output)
    count = len(imported.notes.items)
    click.echo(f"mtc import: wrote {written}; {count} item(s) left as `# mtc import:` comments", err=True)
    return ExitCode.INVALID if count else ExitCode.OK
