"""Resolve a schema-valid spec into the model: apply the profile, merge defaults, convert units.

Precedence, lowest first: ``defaults``, the profile's ``defaults``, the function, the profile's entry for
the function. Mappings (``volumes``, ``env``, ``args``, ``lint``) merge key by key; every other value,
including ``retries``, ``schedule`` and ``sweep`` mappings, is replaced whole. Each function records where
its effective values were declared (``Function.origins``) so the lint can point at the line to change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from compiler.platform import gpus
from compiler.platform.resources import Resources
from compiler.spec import serving, units
from compiler.spec.ir import (
    PIP_KINDS,
    PIP_OPTIONS,
    App,
    Arg,
    Cluster,
    Function,
    Image,
    ImageStep,
    JsonPath,
    Mount,
    PipInstall,
    Retries,
    Schedule,
    SecretRef,
    Sweep,
    Volume,
)
from runtime.core.diagnostics import Diagnostic, SpecError, did_you_mean, dotted
from runtime.core.yamlfile import SourceDoc

REPLACED_WHOLE = frozenset({"retries", "schedule", "sweep", "web", "concurrency"})


def resolve(doc: SourceDoc, profile: str | None = None, *, sha256: str | None = None) -> App:
    """The model of ``doc`` under ``profile``; SpecError for an unknown profile or an unconvertible value."""
    data = doc.data
    profile_data = _profile(doc, profile)
    errors: list[Diagnostic] = []
    functions = {
        name: _function(doc, name, _function_layers(data, profile, profile_data, name), errors)
        for name in data.get("functions", {})
    }
    if errors:
        raise SpecError(errors)
    app = data.get("app", {})
    return App(
        name=app.get("name", ""),
        secrets=_secrets(app.get("secrets", ())),
        images={name: _image(name, spec) for name, spec in data.get("images", {}).items()},
        volumes={name: _volume(name, spec) for name, spec in data.get("volumes", {}).items()},
        functions=functions,
        spec_path=doc.path,
        profile=profile,
        spec_sha256=sha256 or hashlib.sha256(doc.text.encode("utf-8")).hexdigest(),
        lint_ignores=tuple(data.get("lint", {}).get("ignore", {}).items()),
    )


def _profile(doc: SourceDoc, profile: str | None) -> dict:
    if profile is None:
        return {}
    profiles = doc.data.get("profiles", {})
    if profile not in profiles:
        known = ", ".join(profiles) if profiles else "none (add a `profiles:` section)"
        message = (
            f"unknown profile '{profile}'; profiles in this spec: {known}{did_you_mean(profile, profiles)}"
        )
        raise SpecError([doc.diagnostic(("profiles",), message, "profile-unknown", key=True)])
    return profiles[profile] or {}


Layers = list[tuple[JsonPath, dict]]


def _function_layers(data: dict, profile: str | None, profile_data: dict, name: str) -> Layers:
    """The mappings that make up one function, lowest precedence first, each with its JSON path."""
    layers = [
        (("defaults",), data.get("defaults", {})),
        (("profiles", profile, "defaults"), profile_data.get("defaults", {})),
        (("functions", name), data["functions"][name]),
        (("profiles", profile, "functions", name), profile_data.get("functions", {}).get(name, {})),
    ]
    return [(path, layer) for path, layer in layers if layer]


def merge_layers(layers: Layers) -> tuple[dict, dict[str, JsonPath]]:
    """Deep-merge ``layers`` (lowest first); also return, per merged key, the JSON path that declared it."""
    merged: dict[str, Any] = {}
    origins: dict[tuple[str, ...], JsonPath] = {}
    for path, layer in layers:
        _merge_into(merged, layer, path, (), origins)
    return merged, {_origin_key(relative): path for relative, path in origins.items()}


def _merge_into(target: dict, layer: dict, path: JsonPath, relative: tuple[str, ...], origins: dict) -> None:
    for key, value in layer.items():
        here = (*relative, key)
        deep = isinstance(value, dict) and key not in REPLACED_WHOLE
        if not (deep and isinstance(target.get(key), dict)):
            for stale in [known for known in origins if known[: len(here)] == here]:
                del origins[stale]
            target[key] = {} if deep else value
        origins[here] = (*path, key)
        if deep:
            _merge_into(target[key], value, (*path, key), here, origins)


def _origin_key(relative: tuple[str, ...]) -> str:
    """Origin key: ("volumes", "/data") -> "volumes[/data]"; ("lint", "ignore", "x") -> "lint.ignore[x]"."""
    if len(relative) == 1:
        return relative[0]
    return ".".join(relative[:-1]) + f"[{relative[-1]}]"


def _function(doc: SourceDoc, name: str, layers: Layers, errors: list[Diagnostic]) -> Function:
    spec, origins = merge_layers(layers)

    def convert(key: str, parse: Callable[[Any], Any]) -> Any:
        if key not in spec:
            return None
        try:
            return parse(spec[key])
        except ValueError as exc:
            errors.append(doc.diagnostic(origins[key], f"{dotted(origins[key])}: {exc}", "unit-format"))
            return None

    module, _, entry = str(spec.get("run", "")).partition(":")
    return Function(
        name=name,
        module=module,
        entry=entry,
        args=tuple(_arg(name, value) for name, value in spec.get("args", {}).items()),
        image=spec.get("image"),
        resources=Resources(
            cpu=convert("cpu", units.parse_cpu),
            memory_mib=convert("memory", units.parse_size_mib),
            gpus=convert("gpu", _gpus) or (),
            timeout_s=convert("timeout", units.parse_duration_s),
            ephemeral_disk_mib=convert("ephemeral_disk", units.parse_size_mib),
        ),
        retries=convert("retries", _retries),
        mounts=tuple(Mount(path, volume) for path, volume in spec.get("volumes", {}).items()),
        secrets=_secrets(spec.get("secrets", ())),
        region=tuple(_as_list(spec.get("region", []))),
        cloud=spec.get("cloud"),
        nonpreemptible=bool(spec.get("nonpreemptible", False)),
        min_containers=_whole(spec.get("min_containers")),
        max_containers=_whole(spec.get("max_containers")),
        scaledown_window_s=convert("scaledown_window", units.parse_duration_s),
        startup_timeout_s=convert("startup_timeout", units.parse_duration_s),
        single_use_containers=bool(spec.get("single_use_containers", False)),
        block_network=bool(spec.get("block_network", False)),
        cluster=_cluster(spec.get("cluster")),
        methods=convert("methods", serving.methods) or (),
        web=convert("web", serving.web),
        concurrency=convert("concurrency", serving.concurrency),
        schedule=convert("schedule", _schedule),
        sweep=_sweep(spec.get("sweep")),
        env=tuple(spec.get("env", {}).items()),
        lint_ignores=tuple(spec.get("lint", {}).get("ignore", {}).items()),
        origins=origins,
    )


DECLARATION_KEYS = (frozenset({"type", "required"}), frozenset({"type", "default"}))


def _is_declaration(value: Any) -> bool:
    """Whether an ``args`` value is the explicit form, ``{type: T, required: true}`` or ``{type: T, default:
    V}``: a mapping with exactly one of these key sets. Any other value, a mapping included, is a default."""
    return isinstance(value, dict) and frozenset(value) in DECLARATION_KEYS


def _arg(name: str, value: Any) -> Arg:
    if not _is_declaration(value):
        return Arg(name, _frozen(value))
    if "required" in value:  # the schema accepts only `required: true`
        return Arg(name, required=True, declared=str(value["type"]))
    return Arg(name, _frozen(value["default"]), declared=str(value["type"]))


def _gpus(value: str | list[str] | None) -> tuple:
    """``null`` means CPU only, so a function or profile can drop a GPU set in defaults."""
    return () if value is None else tuple(gpus.parse(text) for text in _as_list(value))


def _cluster(value: dict | None) -> Cluster | None:
    """``null`` (e.g. in a profile) means no cluster."""
    if value is None:
        return None
    return Cluster(size=_whole(value["size"]), rdma=bool(value.get("rdma", False)))


def _retries(value: int | dict) -> Retries:
    if isinstance(value, dict):
        return Retries(**{**value, "max_retries": _whole(value["max_retries"])})
    return Retries(max_retries=int(value))


def _schedule(value: dict) -> Schedule:
    if "cron" in value:
        return Schedule("cron", cron=value["cron"], timezone=value.get("timezone"))
    period = value["period"]
    return Schedule("period", period_s=units.parse_period_s(period), period=units.parse_period(period))


def _sweep(value: dict | None) -> Sweep | None:
    """``null`` (e.g. in a profile) means no sweep."""
    if value is None:
        return None
    return Sweep(
        grid=tuple((key, tuple(_frozen(v) for v in values)) for key, values in value.get("grid", {}).items()),
        trials=tuple(
            tuple((key, _frozen(v)) for key, v in trial.items()) for trial in value.get("trials", ())
        ),
        max_parallel=_whole(value.get("max_parallel")),
        name=value.get("name"),
    )


def _image(name: str, spec: dict) -> Image:
    steps = tuple(_image_step(kind, value) for step in spec.get("steps", ()) for kind, value in step.items())
    add_local = spec.get("add_local", {})
    return Image(
        name=name,
        base=spec.get("from", ""),
        python=spec.get("python"),
        steps=steps,
        local_python=tuple(add_local.get("python", ())),
        local_dirs=tuple(add_local.get("dirs", {}).items()),
        local_files=tuple(add_local.get("files", {}).items()),
        parent=spec.get("base"),
        dockerfile=spec.get("from_dockerfile"),
        context_dir=spec.get("context_dir"),
    )


def _image_step(kind: str, value: Any) -> ImageStep:
    """A pip or uv_pip step's list of requirements, or its mapping with options, as one PipInstall."""
    if kind not in PIP_KINDS:
        return ImageStep(kind, value)
    if isinstance(value, list):
        return ImageStep(kind, PipInstall(tuple(value)))
    options = {key: value[key] for key in PIP_OPTIONS if key in value}
    return ImageStep(kind, PipInstall(tuple(value.get("packages", ())), **options))


def _secrets(values: list) -> tuple[SecretRef, ...]:
    return tuple(_secret(value) for value in values)


def _secret(value: str | dict) -> SecretRef:
    """A secret written as a name, or as {name, environment}."""
    if isinstance(value, str):
        return SecretRef(value)
    return SecretRef(value["name"], value.get("environment"))


def _volume(name: str, spec: dict) -> Volume:
    if "bucket" in spec:
        return Volume(
            name=name,
            kind="bucket",
            bucket=spec["bucket"],
            key_prefix=spec.get("key_prefix"),
            secret=_secret(spec["secret"]) if "secret" in spec else None,
            bucket_endpoint_url=spec.get("bucket_endpoint_url"),
            read_only=spec.get("read_only", False),
        )
    return Volume(
        name=name,
        kind="volume",
        volume=spec["volume"],
        environment=spec.get("environment"),
        read_only=spec.get("read_only", False),
    )


def _whole(value: Any) -> Any:
    """JSON Schema's "integer" accepts 3.0; the model holds 3."""
    return int(value) if isinstance(value, float) else value


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _frozen(value: Any) -> Any:
    """Lists become tuples, at any depth, so the model stays immutable and a default is never shared."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return {key: _frozen(item) for key, item in value.items()}
    return value
