"""What the real ``modal`` package builds, offline, from images built on images, pip options, uv, local
files and a Dockerfile (tests/specs/valid/images.yaml), and which environment its secrets and volumes name.

Modal exposes no image contents offline, so :func:`tests.helpers.image_checks.image_layers` reads the
Dockerfile commands and mounts each ``Image`` object will build.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.spec.pynames import variable_name
from tests.helpers.generated_checks import import_generated, secret_repr, volume_repr
from tests.helpers.image_checks import image_layers

SPEC = Path(__file__).parents[1] / "specs" / "valid" / "images.yaml"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(resolved app, imported module); the module is written where its SPEC_DIR finds the spec."""
    result = check(SPEC)
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    folder = tmp_path_factory.mktemp("images")
    path = folder / "images_app.py"
    path.write_text(render(result.app, module_dir=folder), encoding="utf-8")
    return result.app, import_generated(path)


def builds(layers):
    return [layer for layer in layers if layer[0] == "build"]


def test_each_function_runs_in_the_image_its_spec_names(compiled):
    app, module = compiled
    for name, function in app.functions.items():
        image = getattr(module, variable_name(function.image, "image"))
        assert image_layers(getattr(module, name)._spec_.image) == image_layers(image), name


def test_an_image_on_a_base_repeats_none_of_its_steps_and_adds_local_files_after_every_step(compiled):
    _, module = compiled
    cuda, train, serve = (image_layers(getattr(module, f"{n}_image")) for n in ("cuda", "train", "serve"))
    for layers in (cuda, train, serve):
        kinds = [layer[0] for layer in layers]
        assert "build" not in kinds[kinds.index("mount") :]  # Modal builds no step after add_local
    assert builds(train)[: len(builds(cuda))] == builds(cuda)  # cuda's steps first, once
    assert len(builds(train)) == len(builds(cuda)) + 2  # then train's uv_pip and env
    assert builds(serve) == builds(train)  # serve adds local files only
    mounts = [layer for layer in serve if layer[0] == "mount"]
    assert [entry[0][2] for _, entry in mounts] == [
        "/root",
        "/root/docker",
        "/root/options.yaml",
        "/root/minimal.yaml",
    ]


def test_pip_options_reach_the_installer_command(compiled):
    _, module = compiled
    commands = [command for layer in builds(image_layers(module.train_image)) for command in layer[1]]
    pip = next(c for c in commands if "pip install torch" in c)
    assert pip.endswith("torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124")
    uv = next(c for c in commands if "uv pip install" in c)
    assert "--prerelease allow --no-build-isolation flash-attn==2.7.4" in uv


def test_local_files_and_the_dockerfile_are_read_from_the_spec_folder(compiled):
    _, module = compiled
    folder = SPEC.parent.resolve()
    cuda_mounts = [
        entry for layer in image_layers(module.cuda_image) if layer[0] == "mount" for entry in layer[1]
    ]
    assert ("file", str(folder / "options.yaml"), "/root/options.yaml") in cuda_mounts
    first = image_layers(module.docker_image)[0]
    assert first == ("start", "dockerfile", str(folder / "docker" / "Dockerfile"), "3.11")


def test_secrets_and_volumes_name_their_modal_environment(compiled):
    app, module = compiled
    assert repr(module.cache_volume) == volume_repr(app.volumes["cache"])
    assert repr(module.cache_volume) == "modal.Volume.from_name('model-cache', environment_name='shared')"
    assert f"secret={secret_repr(app.volumes['raw'].secret)}," in repr(module.raw_bucket)
    assert module.train.info().secrets == [
        "modal.Secret.from_name('hf-token', environment_name='shared')",
        "modal.Secret.from_name('wandb')",
        "modal.Secret.from_name('wandb', environment_name='staging')",
    ]
