"""resolve: profiles, defaults and units applied; origins point at where each effective value was declared."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from compiler.platform.resources import Gpu
from compiler.spec.ir import ImageStep, Mount, PipInstall, Retries, Schedule, SecretRef
from compiler.spec.resolve import merge_layers, resolve
from runtime.core.diagnostics import SpecError
from runtime.core.yamlfile import load_yaml
from tests.helpers.model import args_of

FULL = Path(__file__).parents[1] / "specs" / "full.yaml"

BASE = """\
version: 1
app: {name: demo}
volumes:
  results: {volume: demo-results}
defaults:
  cpu: 32
  memory: 128GiB
  volumes: {/results: results}
  retries: {max_retries: 3, backoff_coefficient: 2}
functions:
  train:
    run: runtime.train:main
    gpu: A100-80GB
    cpu: 16
    timeout: 24h
    retries: 1
  evaluate:
    run: runtime.evaluate:main
    timeout: 1h
profiles:
  debug:
    defaults: {cpu: 8, memory: 32GiB}
    functions:
      train: {gpu: t4, timeout: 2h}
"""


def load(tmp_path: Path, text: str = BASE):
    path = tmp_path / "deployment.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_yaml(path)


def test_the_full_example_resolves_to_the_declared_values():
    app = resolve(load_yaml(FULL))
    train = app.functions["train"]
    assert (train.module, train.entry, train.run) == ("runtime.train", "main", "runtime.train:main")
    assert train.args == args_of(("config", "specs/train.yaml"), ("resume", False))
    assert train.resources.gpus == (Gpu("A100-80GB", 1),)
    assert (train.resources.cpu, train.resources.memory_mib, train.resources.timeout_s) == (32, 131072, 86400)
    assert train.retries == Retries(max_retries=2)
    assert train.mounts == (Mount("/results", "results"), Mount("/data", "raw"))
    assert train.secrets == (SecretRef("wandb-secret"),)
    assert train.env == (("PYTHONUNBUFFERED", "1"),)
    assert app.secrets == (SecretRef("wandb-secret"),)
    evaluate = app.functions["evaluate"]
    assert evaluate.resources.gpus == (Gpu("A100", 1), Gpu("H100", 2))
    cache = app.functions["populate_cache"]
    assert cache.resources.memory_mib == 15259  # 16GB, decimal, rounded up to whole MiB
    assert cache.retries == Retries(3, backoff_coefficient=2, initial_delay=5, max_delay=60)
    assert cache.schedule == Schedule("period", period_s=86400, period=(("hours", 24),))
    assert cache.image == "slim" and cache.resources.gpus == ()


def test_images_and_volumes_keep_declared_order_and_values():
    app = resolve(load_yaml(FULL))
    cuda = app.images["cuda"]
    assert cuda.base == "nvidia/cuda:12.1.0-devel-ubuntu22.04" and cuda.python == "3.11"
    assert [step.kind for step in cuda.steps] == ["entrypoint", "apt", "env", "pip", "run", "workdir"]
    assert cuda.steps[2] == ImageStep("env", {"TORCH_CUDA_ARCH_LIST": "8.0;9.0"})
    assert cuda.local_python == ("runtime",) and cuda.local_dirs == ((".", "/app/specs"),)
    assert app.images["slim"].is_debian_slim
    raw = app.volumes["raw"]
    assert (raw.kind, raw.bucket, raw.key_prefix, raw.secret, raw.read_only) == (
        "bucket",
        "eeg-data",
        "tusz/",
        SecretRef("aws-s3-secret"),
        True,
    )
    assert app.volumes["results"].kind == "volume" and app.volumes["results"].volume == "mamba-results"


def test_app_records_its_source(tmp_path):
    doc = load(tmp_path)
    app = resolve(doc, "debug", sha256="abc")
    assert (app.name, app.module_name, app.spec_path, app.profile, app.spec_sha256) == (
        "demo",
        "demo",
        doc.path,
        "debug",
        "abc",
    )
    assert resolve(doc).spec_sha256 == hashlib.sha256(doc.text.encode()).hexdigest()


def test_function_values_win_over_defaults_and_origins_say_where(tmp_path):
    train = resolve(load(tmp_path)).functions["train"]
    assert train.resources.cpu == 16
    assert train.resources.memory_mib == 131072
    assert train.origins["cpu"] == ("functions", "train", "cpu")
    assert train.origins["memory"] == ("defaults", "memory")
    assert train.origins["volumes[/results]"] == ("defaults", "volumes", "/results")


def test_retries_are_replaced_whole_not_merged(tmp_path):
    app = resolve(load(tmp_path))
    assert app.functions["train"].retries == Retries(max_retries=1)
    assert app.functions["evaluate"].retries == Retries(max_retries=3, backoff_coefficient=2)


def test_profile_is_merged_over_the_base(tmp_path):
    app = resolve(load(tmp_path), "debug")
    train, evaluate = app.functions["train"], app.functions["evaluate"]
    assert train.resources.gpus == (Gpu("T4", 1),)
    assert train.resources.timeout_s == 7200
    assert train.origins["gpu"] == ("profiles", "debug", "functions", "train", "gpu")
    # the profile's defaults replace the base defaults, but not a value the function sets itself
    assert train.resources.cpu == 16 and evaluate.resources.cpu == 8
    assert evaluate.resources.memory_mib == 32768
    assert evaluate.origins["memory"] == ("profiles", "debug", "defaults", "memory")


def test_unknown_profile_lists_the_profiles(tmp_path):
    with pytest.raises(SpecError) as raised:
        resolve(load(tmp_path), "debg")
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.rule == "profile-unknown"
    assert "debug" in diagnostic.message and "did you mean 'debug'" in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == (BASE.splitlines().index("profiles:") + 1, 1)


def test_unknown_profile_without_profiles_says_so(tmp_path):
    text = BASE[: BASE.index("profiles:")]
    with pytest.raises(SpecError, match="none"):
        resolve(load(tmp_path, text), "debug")


def test_mappings_merge_key_by_key_and_replacing_a_mapping_drops_its_old_origins():
    merged, origins = merge_layers(
        [
            (("defaults",), {"env": {"A": "1", "B": "2"}, "schedule": {"cron": "* * * * *"}}),
            (("functions", "f"), {"env": {"B": "3"}, "schedule": {"period": 60}}),
        ]
    )
    assert merged == {"env": {"A": "1", "B": "3"}, "schedule": {"period": 60}}
    assert origins["env[A]"] == ("defaults", "env", "A")
    assert origins["env[B]"] == ("functions", "f", "env", "B")
    assert origins["schedule"] == ("functions", "f", "schedule")
    replaced, replaced_origins = merge_layers([(("a",), {"x": {"k": 1}}), (("b",), {"x": 5})])
    assert replaced == {"x": 5} and replaced_origins == {"x": ("b", "x")}


def test_list_args_become_tuples(tmp_path):
    text = BASE.replace(
        "    run: runtime.evaluate:main\n",
        "    run: runtime.evaluate:main\n    args: {splits: [dev, eval]}\n",
    )
    app = resolve(load(tmp_path, text))
    assert app.functions["evaluate"].args == args_of(("splits", ("dev", "eval")))


def test_gpu_null_drops_a_gpu_from_defaults(tmp_path):
    text = BASE.replace("  cpu: 32\n", "  cpu: 32\n  gpu: A100\n").replace(
        "    timeout: 1h\n", "    timeout: 1h\n    gpu: null\n"
    )
    app = resolve(load(tmp_path, text))
    assert app.functions["evaluate"].resources.gpus == ()
    assert app.functions["train"].resources.gpus == (Gpu("A100-80GB", 1),)


CHAINED = """\
version: 1
app:
  name: chained
  secrets: [hf, {name: wandb, environment: shared}]
images:
  cuda:
    from: nvidia/cuda:12.1.0-devel-ubuntu22.04
    python: "3.11"
    steps:
      - pip: ["torch==2.2.2"]
    add_local: {python: [runtime], files: {train.yaml: /root/train.yaml}}
  train:
    base: cuda
    steps:
      - uv_pip: {packages: [flash-attn], extra_index_url: "https://example.org/simple", pre: true}
    add_local: {python: [runtime], dirs: {data: /root/data}}
  docker:
    from_dockerfile: docker/Dockerfile
    context_dir: docker
volumes:
  results: {volume: demo-results, environment: shared}
  raw: {bucket: eeg, secret: {name: aws, environment: shared}}
functions:
  train:
    run: runtime.train:main
    image: train
    secrets: [{name: hf}]
"""


def test_pip_steps_hold_their_packages_and_options_whichever_form(tmp_path):
    app = resolve(load(tmp_path, CHAINED))
    assert app.images["cuda"].steps == (ImageStep("pip", PipInstall(("torch==2.2.2",))),)
    (uv,) = app.images["train"].steps
    assert uv == ImageStep(
        "uv_pip", PipInstall(("flash-attn",), extra_index_url="https://example.org/simple", pre=True)
    )
    assert uv.value.options == {"extra_index_url": "https://example.org/simple", "pre": True}


def test_an_image_on_a_base_gets_its_base_python_steps_and_local_files_first(tmp_path):
    app = resolve(load(tmp_path, CHAINED))
    train = app.images["train"]
    assert (train.parent, train.base, train.python) == ("cuda", "", None)
    effective = app.effective_image("train")
    assert (effective.base, effective.python) == ("nvidia/cuda:12.1.0-devel-ubuntu22.04", "3.11")
    assert [step.kind for step in effective.steps] == ["pip", "uv_pip"]
    assert effective.local_python == ("runtime",)  # shipped by both, added once
    assert effective.local_files == (("train.yaml", "/root/train.yaml"),)
    assert effective.local_dirs == (("data", "/root/data"),)
    docker = app.images["docker"]
    assert (docker.dockerfile, docker.context_dir, docker.base) == ("docker/Dockerfile", "docker", "")


def test_a_cycle_of_bases_does_not_loop(tmp_path):
    text = CHAINED.replace("    from: nvidia/cuda:12.1.0-devel-ubuntu22.04\n", "    base: train\n")
    app = resolve(load(tmp_path, text))
    assert [step.kind for step in app.effective_image("train").steps] == ["pip", "uv_pip"]
    assert app.effective_image("missing") is None


def test_secrets_and_volumes_may_name_their_modal_environment(tmp_path):
    app = resolve(load(tmp_path, CHAINED))
    assert app.secrets == (SecretRef("hf"), SecretRef("wandb", "shared"))
    assert app.functions["train"].secrets == (SecretRef("hf"),)
    assert app.volumes["results"].environment == "shared"
    assert app.volumes["raw"].secret == SecretRef("aws", "shared")
    assert str(SecretRef("aws", "shared")) == "aws (environment shared)"
