"""The resolved deployment: frozen dataclasses with profiles, defaults and units already applied.

Everything after `resolve` (lint, render, plan, diff, run) works on these types only; nothing here knows
about YAML or Jinja. Local paths stay as the spec writes them, relative to the spec's folder
(:attr:`App.spec_dir`). Units are normalised: memory and disk in MiB, durations in seconds, GPU types in
Modal's canonical spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compiler.platform.resources import Resources
from compiler.spec.serving import Concurrency, Method, Web

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Retries:
    max_retries: int
    backoff_coefficient: float | None = None
    initial_delay: float | None = None
    max_delay: float | None = None

    @property
    def is_simple(self) -> bool:
        """True when a plain ``retries=N`` says everything."""
        return self.backoff_coefficient is None and self.initial_delay is None and self.max_delay is None


@dataclass(frozen=True)
class Schedule:
    kind: str  # "cron" | "period"
    cron: str | None = None
    timezone: str | None = None
    period_s: int | float | None = None  # seconds, fractional when the spec says so (2.5s, 0.1h)
    period: tuple[tuple[str, int | float], ...] = ()  # modal.Period's keywords, in the spec's units


@dataclass(frozen=True)
class SecretRef:
    """A Modal secret by name, in the active Modal environment or in ``environment``."""

    name: str
    environment: str | None = None

    def __str__(self) -> str:
        return self.name if self.environment is None else f"{self.name} (environment {self.environment})"


PIP_KINDS = ("pip", "uv_pip")  # Image.pip_install and Image.uv_pip_install: same options
PIP_OPTIONS = ("index_url", "extra_index_url", "find_links", "pre", "extra_options")


@dataclass(frozen=True)
class PipInstall:
    """A ``pip`` or ``uv_pip`` step: its requirements and the installer's options (None or False: unset)."""

    packages: tuple[str, ...]
    index_url: str | None = None
    extra_index_url: str | None = None
    find_links: str | None = None
    pre: bool = False
    extra_options: str | None = None

    @property
    def options(self) -> dict[str, str | bool]:
        """The options that are set, in :data:`PIP_OPTIONS` order."""
        return {key: getattr(self, key) for key in PIP_OPTIONS if getattr(self, key) not in (None, False)}


@dataclass(frozen=True)
class ImageStep:
    """One build step in order: kind is entrypoint | apt | env | pip | uv_pip | run | workdir.

    The value is as declared, except for ``pip`` and ``uv_pip``: a :class:`PipInstall` whichever form."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Image:
    """An image as the spec declares it. It starts from ``base`` (a registry reference or ``debian_slim``),
    from a Dockerfile, or from another image of the spec (``parent``); :meth:`App.effective_image` adds what
    a parent brings."""

    name: str
    base: str  # "debian_slim" or a registry reference; "" when built from a Dockerfile or a parent image
    python: str | None
    steps: tuple[ImageStep, ...] = ()
    local_python: tuple[str, ...] = ()  # add_local_python_source, emitted after every step
    local_dirs: tuple[tuple[str, str], ...] = ()  # (local path, remote path), emitted after every step
    local_files: tuple[tuple[str, str], ...] = ()  # (local file, remote path), emitted after every step
    parent: str | None = None  # `base:` another image of the spec, which this one continues
    dockerfile: str | None = None  # `from_dockerfile:` a local Dockerfile, relative to the spec's folder
    context_dir: str | None = None  # the Dockerfile's build context, relative to the spec's folder

    @property
    def is_debian_slim(self) -> bool:
        return self.base == "debian_slim"

    @property
    def has_local(self) -> bool:
        """Whether the image adds local files (Modal refuses a build step after them)."""
        return bool(self.local_python or self.local_dirs or self.local_files)


@dataclass(frozen=True)
class Volume:
    """A named storage source: a Modal Volume, or an S3/GCS bucket mounted with CloudBucketMount."""

    name: str
    kind: str  # "volume" | "bucket"
    volume: str | None = None  # Modal volume name
    bucket: str | None = None
    key_prefix: str | None = None
    secret: SecretRef | None = None
    environment: str | None = None  # Modal environment of the volume; None: the active one
    bucket_endpoint_url: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class Mount:
    path: str  # absolute path in the container
    volume: str  # key into App.volumes


@dataclass(frozen=True)
class Arg:
    """One of a function's ``args``: a parameter of the generated function, passed on to the target.

    ``required`` args have no default (``default`` is None and unused): ``mtc run`` and the generated
    entrypoint refuse to call the function without them. ``declared`` is the spec's ``type:`` (a Python
    annotation such as ``int | None`` or ``list[int]``); without one the target's annotation or the default
    decides. Lists in a default are tuples (the model is immutable); mappings stay dicts.
    """

    name: str
    default: Any = None
    required: bool = False
    declared: str | None = None


@dataclass(frozen=True)
class Sweep:
    """A function's hyperparameter sweep; :mod:`compiler.spec.sweep` expands it into trials.

    A key is one of the function's args or a dotted training-config key (``optim.lr``). Its position in the
    spec is the function's origin ``"sweep"`` (the mapping is replaced whole by a profile).
    """

    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # key -> values, every combination is a trial
    trials: tuple[tuple[tuple[str, Any], ...], ...] = ()  # explicit trials, after the grid's
    max_parallel: int | None = None  # at most this many trials at once; None = as many as Modal allows
    name: str | None = None  # first part of each trial's run name; None = the function's name


@dataclass(frozen=True)
class Cluster:
    """A multi-node cluster (``modal.clustered``): ``size`` containers started together, each a node."""

    size: int
    rdma: bool = False


@dataclass(frozen=True)
class Function:
    name: str
    module: str  # the `run` target, "module:function" split
    entry: str
    args: tuple[Arg, ...] = ()  # in declared order
    image: str | None = None
    resources: Resources = Resources()
    retries: Retries | None = None
    mounts: tuple[Mount, ...] = ()
    secrets: tuple[SecretRef, ...] = ()
    region: tuple[str, ...] = ()
    cloud: str | None = None
    nonpreemptible: bool = False
    min_containers: int | None = None
    max_containers: int | None = None
    scaledown_window_s: int | None = None
    startup_timeout_s: int | None = None  # None = Modal's `timeout` also bounds startup
    single_use_containers: bool = False  # a fresh container for every input
    block_network: bool = False
    cluster: Cluster | None = None  # None: one container per input
    methods: tuple[Method, ...] = ()  # set: a Modal class (`run: module:Class`), see compiler.spec.serving
    web: Web | None = None  # a web endpoint (on a function; a class's are on its methods)
    concurrency: Concurrency | None = None  # @modal.concurrent
    schedule: Schedule | None = None
    sweep: Sweep | None = None
    env: tuple[tuple[str, str], ...] = ()  # environment variables set on the function, in declared order
    lint_ignores: tuple[tuple[str, str], ...] = ()  # rule id -> the reason it is silenced for this function
    # Where each effective value was declared, for positioned lint messages: spec key -> JSON path in the
    # spec. Keys are the spec's names ("gpu", "timeout", "memory", ...), and "volumes[/data]", "env[NAME]" for
    # one entry of a mapping. A value set by a profile points into the profile. Not part of equality.
    origins: dict[str, JsonPath] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def run(self) -> str:
        return f"{self.module}:{self.entry}"

    @property
    def is_class(self) -> bool:
        """Whether the entry is a Modal class: its ``run`` names a class, its ``methods`` are exposed."""
        return bool(self.methods)

    @property
    def web_endpoints(self) -> list[tuple[str, Web]]:
        """(name, endpoint) for the function's own web endpoint, or each of its methods that is one."""
        if self.web is not None:
            return [(self.name, self.web)]
        return [(method.name, method.web) for method in self.methods if method.web is not None]

    @property
    def arg_dict(self) -> dict[str, Any]:
        """Each arg that has a default -> its default (required args have none)."""
        return {arg.name: arg.default for arg in self.args if not arg.required}

    @property
    def arg_names(self) -> list[str]:
        return [arg.name for arg in self.args]

    @property
    def required_args(self) -> list[str]:
        return [arg.name for arg in self.args if arg.required]

    @property
    def nodes(self) -> int:
        """Containers per input: the cluster's size, else 1."""
        return self.cluster.size if self.cluster else 1


@dataclass(frozen=True)
class App:
    name: str
    secrets: tuple[SecretRef, ...] = ()
    images: dict[str, Image] = field(default_factory=dict, hash=False)
    volumes: dict[str, Volume] = field(default_factory=dict, hash=False)
    functions: dict[str, Function] = field(default_factory=dict, hash=False)
    spec_path: str = ""
    profile: str | None = None
    spec_sha256: str = ""
    lint_ignores: tuple[tuple[str, str], ...] = ()  # file-wide: rule id -> the reason it is silenced

    @property
    def spec_dir(self) -> Path:
        """The spec's folder: local paths in the spec (``add_local`` dirs) are relative to it."""
        return Path(self.spec_path).resolve().parent if self.spec_path else Path.cwd()

    def local_source(self, local: str) -> Path:
        """Where a local path of the spec is on this machine, whatever the current folder."""
        return (self.spec_dir / local).resolve()

    def effective_image(self, name: str | None) -> Image | None:
        """Image ``name`` with what its parents bring: their base, Python, build steps and local files first.

        None for no name or an undeclared one; a cycle of parents stops where it closes (the lint reports
        it)."""
        image = self.images.get(name) if name else None
        seen = {name}
        while image is not None and image.parent is not None and image.parent not in seen:
            parent = self.images.get(image.parent)
            if parent is None:
                break
            seen.add(image.parent)
            image = replace(
                image,
                base=parent.base,
                python=parent.python,
                steps=parent.steps + image.steps,
                local_python=_once(parent.local_python + image.local_python),
                local_dirs=_once(parent.local_dirs + image.local_dirs),
                local_files=_once(parent.local_files + image.local_files),
                parent=parent.parent,
                dockerfile=parent.dockerfile,
                context_dir=parent.context_dir,
            )
        return image

    @property
    def module_name(self) -> str:
        """File stem of the generated module: the app name with '-' as '_'."""
        return self.name.replace("-", "_")


def _once(items: tuple) -> tuple:
    """``items`` without repeats, in first-seen order (a base and its child may ship the same package)."""
    return tuple(dict.fromkeys(items))
