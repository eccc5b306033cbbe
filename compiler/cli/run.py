"""``mtc run``: run a function locally or on Modal.

``mtc run FUNCTION`` runs on the local embedded backend by default (:mod:`compiler.backends.local`);
``--backend modal`` refuses a stale generated module, then hands over to ``modal run``. With ``--sweep`` every
trial of the function's sweep runs: locally one after another (or ``--parallel N`` at once), on Modal through
the generated entrypoint's ``--sweep``. Locally, ``--processes N`` (or ``--ddp``: as many as the function's
GPUs) trains with N data-parallel processes, and ``--nodes N`` (by default a clustered function's
``cluster.size``) emulates N cluster nodes of those processes on this machine
(:mod:`compiler.backends.local.nodes`). Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from compiler.cli.checked import checked
from compiler.cli.exitcodes import ExitCode
from compiler.cli.options import (
    DEFAULT_SPEC,
    profile_option,
    require_extra,
    spec_argument,
    volumes_dir_option,
)
from compiler.platform import local_storage


class ArgError(Exception):
    """An ``--arg`` the function does not take, or a value of the wrong type."""


def say(message: str) -> None:
    click.echo(f"mtc run: {message}", err=True)


@click.command()
@click.argument("function")
@spec_argument
@profile_option
@click.option("--backend", type=click.Choice(["local", "modal"]), default="local", show_default=True)
@click.option("--detach", is_flag=True, help="Modal only: keep the app running after this command exits.")
@click.option(
    "--arg", "arg_pairs", multiple=True, metavar="NAME=VALUE", help="Override one of the function's args."
)
@volumes_dir_option
@click.option("--sweep", is_flag=True, help="Run every trial of the function's sweep, then show a summary.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    metavar="N",
    help="Local sweep: run up to N trials at once, as the cores allow (default 1).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    metavar="N",
    help="Local: train with N data-parallel processes (gloo on CPU), at most one per core the function gets.",
)
@click.option("--ddp", is_flag=True, help="Local: as many data-parallel processes as the function's GPUs.")
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    metavar="N",
    help="Local: emulate N cluster nodes on localhost (default: the function's cluster.size), capped by the "
    "cores.",
)
@click.option(
    "--port",
    type=click.IntRange(min=1, max=65535),
    help="Local, a class or web function: serve on this port of 127.0.0.1 (default: a free one).",
)
def run(
    function: str,
    spec: str,
    profile: str | None,
    backend: str,
    detach: bool,
    arg_pairs: tuple[str, ...],
    volumes_dir: str | None,
    sweep: bool,
    parallel: int | None,
    processes: int | None,
    ddp: bool,
    nodes: int | None,
    port: int | None,
) -> int:
    """Run FUNCTION of SPEC locally (the default) or on Modal, with its args from the spec and --arg."""
    if detach and backend != "modal":
        raise click.UsageError("--detach needs --backend modal (a local run is attached to this terminal)")
    if parallel is not None and not (sweep and backend == "local"):
        raise click.UsageError(
            "--parallel needs --sweep on the local backend (on Modal, max_parallel decides)"
        )
    if (processes is not None or ddp) and (backend != "local" or sweep):
        raise click.UsageError(
            "--processes and --ddp are for a local run without --sweep (on Modal, one process per GPU)"
        )
    if nodes is not None and (backend != "local" or sweep):
        raise click.UsageError("--nodes is for a local run without --sweep (on Modal, cluster.size decides)")
    if processes is not None and ddp:
        raise click.UsageError("--processes and --ddp both set the process count; give one of them")
    require_extra("modal" if backend == "modal" else "train", f"mtc run --backend {backend}")
    result = checked(spec, profile)
    if result is None:
        return ExitCode.INVALID
    app = result.app
    fn = app.functions.get(function)
    if fn is None:
        _unknown_function(function, app)
        return ExitCode.INVALID
    try:
        overrides = typed_args(fn, arg_pairs, app.spec_dir)
    except ArgError as exc:
        click.echo(f"error: {exc}", err=True)
        return ExitCode.INVALID
    missing = missing_required(fn, overrides, sweep)
    if missing:
        given = " ".join(f"--arg {name}=VALUE" for name in missing)
        click.echo(
            f"error: {function} needs {given} ({', '.join(missing)}: no default in the spec)", err=True
        )
        return ExitCode.INVALID
    serving = fn.is_class or fn.web is not None
    if port is not None and not (serving and backend == "local"):
        raise click.UsageError("--port is for serving a class or web function on the local backend")
    if serving and (sweep or processes is not None or ddp or nodes is not None):
        raise click.UsageError(f"{function} is served: --sweep, --processes, --ddp and --nodes do not apply")
    if sweep and fn.sweep is None:
        sweeping = ", ".join(name for name, f in app.functions.items() if f.sweep) or "none"
        click.echo(f"error: {function} declares no sweep (functions with one: {sweeping})", err=True)
        return ExitCode.INVALID
    if backend == "modal":
        return _run_on_modal(result, profile, function, overrides, detach, sweep)
    from compiler.backends.local.prepare import declared_gpu_count

    kwargs = {**fn.arg_dict, **overrides}
    volumes = local_storage.volumes_dir(volumes_dir)
    if serving:
        require_extra("serve", f"mtc run {function}")
        return _serve_locally(app, fn, kwargs, volumes, port)
    if sweep:
        return _sweep_locally(app, fn, kwargs, volumes, parallel or 1)
    processes = declared_gpu_count(fn) if ddp else processes
    return _run_locally(app, fn, kwargs, volumes, processes, nodes or fn.nodes)


def _run_locally(
    app: Any, fn: Any, kwargs: dict[str, Any], volumes: Path, processes: int | None, nodes: int
) -> int:
    """One local run of ``fn``, with ``processes`` data-parallel processes (per node) when given, on
    ``nodes`` emulated nodes."""
    from compiler.backends.local.nodes import with_nodes
    from compiler.backends.local.prepare import prepare, with_processes
    from compiler.backends.local.supervise import execute

    plan = prepare(app, fn, kwargs, volumes, workdir_stand_in(app, fn))
    if processes is not None:
        plan = with_processes(plan, processes, say)
    if nodes > 1:
        plan = with_nodes(plan, nodes, say)
    return execute(plan, say)


def _serve_locally(app: Any, fn: Any, kwargs: dict[str, Any], volumes: Path, port: int | None) -> int:
    """Serve a class or web function on 127.0.0.1 under the function's limits until Ctrl-C."""
    from dataclasses import replace

    from compiler.backends.local.prepare import prepare
    from compiler.backends.local.serve import SERVE_TARGET, free_port
    from compiler.backends.local.supervise import execute

    plan = prepare(app, fn, kwargs, volumes, workdir_stand_in(app, fn))
    served = {"target": fn.run, "kwargs": kwargs, "name": fn.name, "port": port or free_port()}
    if fn.is_class:
        served["methods"] = [[m.name, asdict(m.web) if m.web else None] for m in fn.methods]
    else:
        served["web"] = asdict(fn.web)
    notice = "each request's time is not limited locally (Modal's timeout bounds each input)"
    startup = plan.startup_timeout_s or plan.timeout_s  # Modal's timeout bounds a container's startup
    plan = replace(
        plan,
        target=SERVE_TARGET,
        kwargs=served,
        timeout_s=None,
        startup_timeout_s=startup,
        notices=(*plan.notices, notice),
    )
    return execute(plan, say)


def workdir_stand_in(app: Any, fn: Any) -> Path:
    """Where the local child starts, standing in for the image's workdir: relative paths in args are
    container paths relative to it (``specs/train.yaml`` is ``/root/specs/train.yaml``).

    It is the folder whose sub-folders the image ships under its workdir (the repository for the example:
    the spec's folder ``specs/`` ships to ``/root/specs``); else the folder the target's package was found
    in; else the current folder.
    """
    import posixpath
    from pathlib import PurePosixPath

    from compiler.spec.targets import locate

    image = app.effective_image(fn.image)
    workdir = "/"
    for step in image.steps if image else ():
        workdir = str(step.value) if step.kind == "workdir" else workdir
    for local, remote in image.local_dirs if image else ():
        inside = posixpath.relpath(posixpath.normpath(remote), workdir)
        if inside.startswith(".."):
            continue  # shipped outside the workdir
        source = app.local_source(local)
        parts = PurePosixPath(inside).parts if inside != "." else ()
        if not parts or source.parts[-len(parts) :] == parts:
            return Path(*source.parts[: len(source.parts) - len(parts)])
    located = locate(fn.module, app.spec_dir)
    return located.project if located and located.project else Path.cwd()


def _sweep_locally(app: Any, fn: Any, kwargs: dict[str, Any], volumes: Path, requested: int) -> int:
    """Every trial, then the summary table on stdout; exit 1 when a trial failed."""
    from compiler.backends.local import sweep as local_sweep
    from compiler.spec import sweep

    parallel = local_sweep.sweep_parallel(requested, len(sweep.function_trials(fn)), fn, say)
    outcomes = local_sweep.execute_sweep(app, fn, kwargs, volumes, workdir_stand_in(app, fn), parallel, say)
    click.echo(local_sweep.sweep_table(outcomes), nl=False)
    failed = [o for o in outcomes if o.exit_code != 0]
    if failed:
        say(
            f"{len(failed)} of {len(outcomes)} trials failed: "
            + ", ".join(str(o.trial.index) for o in failed)
        )
        return ExitCode.INVALID
    return ExitCode.OK


def _unknown_function(name: str, app: Any) -> None:
    from runtime.core.diagnostics import did_you_mean

    known = ", ".join(sorted(app.functions)) or "(none)"
    click.echo(
        f"error: no function '{name}' in {app.spec_path} (it has: {known})"
        + did_you_mean(name, app.functions),
        err=True,
    )


def missing_required(fn: Any, given: dict[str, Any], sweep: bool) -> list[str]:
    """The required args of ``fn`` that neither ``given`` nor, with ``sweep``, every trial sets."""
    from compiler.spec.sweep import function_trials

    trials = function_trials(fn) if sweep and fn.sweep else []
    return [
        name
        for name in fn.required_args
        if name not in given and not (trials and all(name in dict(t.values) for t in trials))
    ]


def typed_args(fn: Any, pairs: tuple[str, ...], root: Path) -> dict[str, Any]:
    """``NAME=VALUE`` pairs parsed as the spec's ``type:``, else the target's parameters (read from its source
    under ``root``), else the spec's defaults declare them: the same types the generated module's signature
    has."""
    from compiler.spec import argtypes
    from compiler.spec.targets import read_target
    from runtime.core.diagnostics import did_you_mean

    defaults = {arg.name: arg for arg in fn.args}
    target = read_target(fn.module, fn.entry, root).target
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ArgError(f"--arg {pair!r}: expected NAME=VALUE")
        if name not in defaults:
            valid = ", ".join(defaults) or "none"
            raise ArgError(
                f"--arg {name}: {fn.name} takes no arg '{name}' (its args: {valid})"
                + did_you_mean(name, defaults)
            )
        parameter = target.parameter(name) if target else None
        expected = argtypes.of_arg(defaults[name], parameter)
        try:
            out[name] = argtypes.parse(text, expected) if expected else text
        except argtypes.ArgTypeError as exc:
            why = _type_source(fn, defaults[name], parameter)
            raise ArgError(f"--arg {name}={text}: expected {exc} for {name} ({why})") from None
    return out


def _type_source(fn: Any, arg: Any, parameter: Any) -> str:
    """Where the expected type of ``arg`` comes from, for a message."""
    from compiler.spec import argtypes

    if arg.declared is not None:
        return f"the spec declares type {arg.declared}"
    if parameter is not None and argtypes.from_annotation(parameter.annotation):
        return f"{fn.run} declares {arg.name}: {parameter.annotation}"
    return f"the spec's default is {json.dumps(arg.default, default=list)}"


# ------------------------------------------------------------------------------------------------ Modal


def _run_on_modal(
    result: Any, profile: str | None, function: str, overrides: dict[str, Any], detach: bool, sweep: bool
) -> int:
    from compiler.cli.compile import GENERATED_DIR, render_module
    from compiler.codegen.emit import difference

    nulls = [name for name, value in overrides.items() if value is None]
    if nulls:
        click.echo(
            f"error: --arg {nulls[0]}=null: Modal's CLI cannot pass null; leave the arg out to keep the "
            "spec's value",
            err=True,
        )
        return ExitCode.INVALID
    spec = result.app.spec_path
    module = f"{GENERATED_DIR}/{result.app.module_name}.py"
    source = render_module(result)
    if difference(module, source) is not None:
        hint = (
            "mtc compile"
            + (f" {spec}" if spec != DEFAULT_SPEC else "")
            + (f" --profile {profile}" if profile else "")
        )
        click.echo(f"error: {module} is missing or out of date with {spec}; run `{hint}` first", err=True)
        return ExitCode.INVALID
    from compiler.backends import modal

    return modal.run_function(module, function, overrides, detach=detach, sweep=sweep)
