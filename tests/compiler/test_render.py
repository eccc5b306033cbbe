"""The renderer: the literal filter, typed signatures, names, layout and determinism."""

from __future__ import annotations

import ast
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import lint
from compiler.codegen import context, functions, images, literals
from compiler.codegen import layout as layout_module
from compiler.codegen import render as render_module
from compiler.codegen.emit import InternalError
from compiler.codegen.functions import parameters
from compiler.codegen.layout import Chain, Entry, Group, layout
from compiler.codegen.literals import RenderError, literal
from compiler.codegen.render import render
from compiler.lint.names import name_problems
from compiler.platform.resources import Gpu, Resources
from compiler.spec.ir import (
    App,
    Arg,
    Function,
    Image,
    ImageStep,
    Mount,
    PipInstall,
    Retries,
    Schedule,
    SecretRef,
    Volume,
)
from compiler.spec.targets import Parameter as TargetParameter
from compiler.spec.targets import Target
from tests.helpers.model import args_of

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_STRINGS = [
    "",
    "plain",
    "it's",
    'say "hi"',
    "both ' and \"",
    'more "" than \'',
    "back\\slash\\",
    "line\nbreak\r\nand\rreturn",
    '"""triple"""',
    "'''triple'''",
    "{{ jinja }} {% raw %} {# c #}",
    "\x00\x07\x1b[31m\x7f",
    "\u2028\u2029\x85\x0c\x0b",
    "température ☃ 𝔘 中文 \u200b\ufeff",
    "\ud800 lone surrogate",
    "\\N{BULLET} \\x41 \\u0041",
    "f'{x}' {0} %s",
    "a" * 300,
]


def app_with(**function_fields) -> App:
    function = Function(name="job", module="runtime.jobs", entry="run", **function_fields)
    return App(name="demo", functions={"job": function}, spec_path="specs/demo.yaml", spec_sha256="0" * 64)


# ----------------------------------------------------------------------------------------------- literal


@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_any_string_becomes_one_literal_with_the_same_value(text):
    source = literal(text)
    tree = ast.parse(source, mode="eval")
    assert isinstance(tree.body, ast.Constant)
    assert tree.body.value == text
    assert "\n" not in source and "\r" not in source


@pytest.mark.parametrize(
    "value",
    [0, -7, 10**30, 0.1, -0.0, 1e-12, 1.7976931348623157e308, 5e-324, True, False, None, 1 / 3],
)
def test_scalars_round_trip_exactly(value):
    assert ast.literal_eval(literal(value)) == value
    assert type(ast.literal_eval(literal(value))) is type(value)


def test_floats_keep_their_sign_and_every_bit():
    assert math.copysign(1, ast.literal_eval(literal(-0.0))) == -1
    assert ast.literal_eval(literal(0.1 + 0.2)) == 0.1 + 0.2


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_with_a_clear_error(value):
    with pytest.raises(RenderError, match="finite"):
        literal(value)


def test_containers_keep_their_declared_order():
    value = {"b": [1, "x"], "a": {"z": None, "y": True}}
    source = literal(value)
    assert ast.literal_eval(source) == value
    assert list(ast.literal_eval(source)) == ["b", "a"]


def test_strings_prefer_double_quotes_like_ruff():
    assert literal("x") == '"x"'
    assert literal("it's") == '"it\'s"'
    assert literal('say "hi"') == "'say \"hi\"'"


def test_an_unsupported_type_is_refused():
    with pytest.raises(RenderError, match="object"):
        literal({"a": object()})


# --------------------------------------------------------------------------------------------- signature


def test_parameters_are_typed_from_their_defaults():
    function = Function(
        name="f",
        module="m",
        entry="e",
        args=args_of(("flag", True), ("count", 3), ("rate", 0.5), ("path", "a.yaml"), ("layers", (64, "x"))),
    )
    params = {p.name: p for p in parameters(function)}
    assert [(p.type.annotation, p.type.is_json) for p in params.values()] == [
        ("bool", False),
        ("int", False),
        ("float", False),
        ("str", False),
        ("list | None", True),
    ]
    assert params["layers"].type.default == [64, "x"]


def test_a_list_default_is_filled_in_by_the_body_so_no_call_shares_it():
    source = render(app_with(args=args_of(("layers", (64, 128)))))
    assert "def job(layers: list | None = None):" in source
    assert "    if layers is None:\n        layers = [64, 128]\n    return run(layers=layers)\n" in source
    assert 'JSON_OPTIONS = {"layers": list}' in source


def test_null_nested_and_required_args_get_matching_signatures():
    function = Function(
        name="job",
        module="runtime.jobs",
        entry="run",
        args=(
            Arg("note", None),
            Arg("opts", {"a": (1, {"b": None})}),
            Arg("limit", None, declared="int | None"),
            Arg("config", required=True, declared="str"),
            Arg("sizes", required=True, declared="list[int]"),
        ),
    )
    sources = [p.source for p in parameters(function)]
    assert sources == [
        "config: str",
        "sizes: list[int]",
        "note: str | None = None",
        "opts: dict | None = None",
        "limit: int | None = None",
    ]
    source = render(dataclasses.replace(app_with(), functions={"job": function}))
    assert '    if opts is None:\n        opts = {"a": [1, {"b": None}]}\n' in source
    assert 'REQUIRED = {"job": ["config", "sizes"]}' in source
    actions = source[source.index("ACTIONS = ") : source.index("REQUIRED = ")]
    assert [line.strip() for line in actions.splitlines()[4:9]] == [
        '"config": None,',
        '"sizes": None,',
        '"note": None,',
        '"opts": {"a": [1, {"b": None}]},',
        '"limit": None,',
    ]


@pytest.mark.parametrize("name", ["not-an-identifier", "class", "1st", "action", "modal", "main"])
def test_argument_names_that_cannot_be_parameters_are_refused(name):
    with pytest.raises(RenderError) as caught:
        render(app_with(args=args_of((name, 1))))
    assert caught.value.path == ("functions", "job", "args", name)


def test_one_option_name_with_two_types_is_refused_for_the_entrypoint():
    first = Function(
        name="a",
        module="m",
        entry="e",
        args=args_of(("size", 1)),
    )
    second = Function(
        name="b",
        module="m",
        entry="e",
        args=args_of(("size", "big")),
    )
    with pytest.raises(RenderError, match="one type per option"):
        render(App(name="demo", functions={"a": first, "b": second}))


def test_a_json_option_and_a_plain_string_option_of_one_name_are_refused():
    """Both are `str` to Modal, but the entrypoint checks JSON options: one name cannot be both."""
    first = Function(
        name="a",
        module="m",
        entry="e",
        args=args_of(("size", ("s", "m"))),
    )
    second = Function(
        name="b",
        module="m",
        entry="e",
        args=args_of(("size", "big")),
    )
    with pytest.raises(RenderError, match="a str here but a JSON list in another function"):
        render(App(name="demo", functions={"a": first, "b": second}))


def test_a_parameter_that_shadows_the_target_gets_the_target_renamed():
    source = render(app_with(args=args_of(("run", "x"))))
    assert "from runtime.jobs import run as run_" in source
    assert "return run_(run=run)" in source


def test_image_and_volume_keys_that_clash_as_python_names_are_refused():
    images = {"a-b": Image("a-b", "debian_slim", None), "a_b": Image("a_b", "debian_slim", None)}
    app = dataclasses.replace(app_with(), images=images)
    with pytest.raises(RenderError, match="a_b_image"):
        render(app)


def test_an_image_variable_that_clashes_with_a_base_without_its_local_files_is_refused():
    base = Image("a", "debian_slim", None, local_python=("runtime",))
    images = {
        "a": base,
        "b": Image("b", "", None, parent="a"),
        "a_build": Image("a_build", "debian_slim", None),
    }
    app = dataclasses.replace(app_with(), images=images)
    with pytest.raises(RenderError, match="a_build_image"):
        render(app)


@pytest.mark.parametrize("parent", ["missing", "b"])
def test_an_unknown_or_circular_base_is_an_internal_error_naming_the_rule(parent):
    images = {"a": Image("a", "", None, parent=parent), "b": Image("b", "", None, parent="a")}
    with pytest.raises(RenderError, match="unknown or circular") as raised:
        render(dataclasses.replace(app_with(), images=images))
    assert raised.value.rule == "image-base"


def test_a_function_named_like_a_module_level_name_is_refused():
    function = Function(name="app", module="m", entry="e")
    with pytest.raises(RenderError, match="already used"):
        render(App(name="demo", functions={"app": function}))


# ---------------------------------------------------------------------------------------------- layout


def test_a_group_stays_on_one_line_when_it_fits_and_breaks_with_trailing_commas_when_not():
    short = Group("f(", ("1", "2"), ")")
    assert layout(short) == "f(1, 2)"
    long = Group("f(", tuple(literal("x" * 30) for _ in range(3)), ")")
    assert layout(long) == "f(\n" + "".join(f"    {literal('x' * 30)},\n" for _ in range(3)) + ")"


def test_every_value_reaches_the_module_through_the_literal_filter(monkeypatch):
    """Swap the literal filter for a marker: no spec string may then appear in the output."""
    app = rich_app()
    marked = render(app)
    for module in (
        render_module,
        context,
        functions,
        images,
        layout_module,
        literals,
    ):  # importers of literal
        monkeypatch.setattr(module, "literal", lambda value: "LIT")
    render_module._template.cache_clear()
    try:
        unmarked = render(app)
    finally:
        render_module._template.cache_clear()
    spec_strings = ("wandb-secret", "registry/base:1", "pkg==1", "echo hi", "/work", "bucket-1", "prefix/")
    spec_strings += ("https://index.example", "--no-deps", "/app/train.yaml", "vol-env", "secret-env")
    for secret in spec_strings:
        assert secret in marked
        assert secret not in unmarked


def rich_app() -> App:
    image = Image(
        name="gpu",
        base="registry/base:1",
        python="3.11",
        steps=(
            ImageStep("entrypoint", ()),
            ImageStep("apt", ("git",)),
            ImageStep("env", {"A": "b"}),
            ImageStep("pip", PipInstall(("pkg==1",), index_url="https://index.example")),
            ImageStep("run", ("echo hi",)),
            ImageStep("workdir", "/work"),
        ),
        local_python=("runtime",),
        local_dirs=(("specs", "/app/specs"),),
        local_files=(("train.yaml", "/app/train.yaml"),),
    )
    child = Image(
        name="child",
        base="",
        python=None,
        parent="gpu",
        steps=(ImageStep("uv_pip", PipInstall(("flash-attn",), pre=True, extra_options="--no-deps")),),
    )
    volumes = {
        "results": Volume("results", "volume", volume="results-vol", environment="vol-env"),
        "raw": Volume(
            "raw", "bucket", bucket="bucket-1", key_prefix="prefix/", secret=SecretRef("aws"), read_only=True
        ),
    }
    function = Function(
        name="train",
        module="runtime.train",
        entry="main",
        args=args_of(("config", "specs/train.yaml")),
        image="gpu",
        resources=Resources(
            cpu=8.0, memory_mib=32768, gpus=(Gpu("A100-80GB"), Gpu("H100", 2)), timeout_s=3600
        ),
        retries=Retries(3, backoff_coefficient=2.0),
        mounts=(Mount("/results", "results"), Mount("/data", "raw")),
        secrets=(SecretRef("wandb-secret", "secret-env"),),
        schedule=None,
    )
    cron = Function(
        name="nightly", module="runtime.jobs", entry="nightly", schedule=Schedule("cron", cron="0 3 * * *")
    )
    return App(
        name="rich",
        secrets=(SecretRef("app-secret"),),
        images={"gpu": image, "child": child},
        volumes=volumes,
        functions={"train": function, "nightly": cron},
        spec_path="specs/rich.yaml",
        profile="debug",
        spec_sha256="ab" * 32,
    )


def test_local_files_are_added_after_every_build_step():
    source = render(rich_app())
    order = [source.index(f".{method}(") for method in ("entrypoint", "apt_install", "env", "pip_install")]
    order += [
        source.index(f".{m}(")
        for m in ("run_commands", "workdir", "add_local_python_source", "add_local_dir")
    ]
    assert order == sorted(order)


def test_the_header_names_the_spec_profile_hash_and_the_command_to_regenerate():
    header = render(rich_app()).split("\n\n")[0]
    assert '"specs/rich.yaml" with profile "debug"' in header
    assert "mtc compile specs/rich.yaml --profile debug" in header
    assert "ab" * 32 in header
    assert all(line.startswith("#") for line in header.splitlines())


def test_a_hostile_spec_path_cannot_leave_the_header_comment():
    app = dataclasses.replace(rich_app(), spec_path="x\nimport os; os.system('boom')\n#")
    source = render(app)
    assert not any(line.startswith("import os") for line in source.splitlines())
    compile(source, "x.py", "exec")


def test_each_function_carries_its_hourly_cost():
    source = render(rich_app())
    # A100-80GB 0.000694/s, 8 cores at 0.0000131/s, 32 GiB at 0.00000222/s
    expected = 0.000694 * 3600 + 8 * 0.0000131 * 3600 + 32 * 0.00000222 * 3600
    assert f"# Estimated cost: ${expected:.2f}/hour" in source


# ------------------------------------------------------------------------------------------ determinism


def test_rendering_is_deterministic_across_processes():
    program = (
        "import sys; sys.path.insert(0, 'tests/compiler'); from test_render import rich_app; "
        "from compiler.codegen.render import render; sys.stdout.write(render(rich_app()))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {render(rich_app())}


def test_ruff_accepts_the_layout_at_both_common_line_lengths(tmp_path):
    target = tmp_path / "rich.py"
    target.write_text(render(rich_app()))
    ruff = [sys.executable, "-m", "ruff"]
    for length in ("88", "110"):
        formatted = subprocess.run(
            [*ruff, "format", "--check", "--diff", "--line-length", length, str(target)],
            capture_output=True,
            text=True,
        )
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    checked = subprocess.run(
        [*ruff, "check", "--config", str(ROOT / "pyproject.toml"), str(target)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize(
    ("head", "calls"),
    [
        ("cuda_build_image", ((".uv_pip_install", ('"flash-attn==2.7.4"',) * 4),)),
        (
            "cuda_build_image",
            ((".uv_pip_install", ('"flash-attn"',)), (".add_local_python_source", ('"x"',))),
        ),
        (
            "cuda_build_image",
            ((".uv_pip_install", ('"f"',) * 9), (".add_local_python_source", ('"runtime"',))),
        ),
        ("c", ((".a", ('"x"',)), (".b", ('"y" * 30',)), (".c", ('"z"',)))),
        (Group("modal.Image.debian_slim(", ('python_version="3.11"',) * 4, ")"), ((".env", ('"x"',)),)),
    ],
)
def test_an_image_chain_is_laid_out_as_ruff_lays_it_out(tmp_path, head, calls):
    """A chain from a variable keeps its first call on the line; one more call splits at brackets, two make
    it fluent: the layout must be ruff's, or `ruff format --check` of a generated module fails."""
    chain = Chain(head, tuple(Group(f"{name}(", tuple(items), ")") for name, items in calls))
    target = tmp_path / "chain.py"
    target.write_text(layout(Entry("train_image = ", chain)) + "\n")
    ruff = [sys.executable, "-m", "ruff", "format", "--check", "--diff", "--line-length", "88", str(target)]
    formatted = subprocess.run(ruff, capture_output=True, text=True)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    assert max(len(line) for line in target.read_text().splitlines()) <= 88


def test_short_values_fit_in_88_columns_and_long_ones_are_declared():
    short = render(rich_app())
    assert max(len(line) for line in short.splitlines()) <= 88
    assert "# ruff: noqa: E501" not in short
    long = render(dataclasses.replace(rich_app(), name="n" * 100))
    assert "# ruff: noqa: E501" in long.split("\n\n")[0]


# ------------------------------------------------------------------------------------ checkpoint commits


def project_with_target(tmp_path: Path, signature: str) -> Path:
    package = tmp_path / "runtime"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text(f"def run({signature}):\n    return None\n")
    return tmp_path


def app_with_volumes(*volumes: Volume) -> App:
    mounts = tuple(Mount(f"/{v.name}", v.name) for v in volumes)
    function = Function(name="job", module="runtime.jobs", entry="run", mounts=mounts)
    return dataclasses.replace(app_with(), functions={"job": function}, volumes={v.name: v for v in volumes})


def test_a_target_taking_on_checkpoint_gets_the_commit_of_its_writable_volume(tmp_path):
    root = project_with_target(tmp_path, "config='', on_checkpoint=None")
    app = app_with_volumes(Volume("results", "volume", volume="results"))
    assert "return run(on_checkpoint=results_volume.commit)" in render(app, root=root)


def test_several_writable_volumes_are_all_committed(tmp_path):
    root = project_with_target(tmp_path, "*, on_checkpoint=None")
    app = app_with_volumes(Volume("a", "volume", volume="a"), Volume("b", "volume", volume="b"))
    source = render(app, root=root)
    assert "on_checkpoint=lambda: [volume.commit() for volume in (a_volume, b_volume)]" in source


@pytest.mark.parametrize(
    ("signature", "volume"),
    [
        ("config=''", Volume("results", "volume", volume="results")),  # the target takes no callback
        ("on_checkpoint=None", Volume("results", "volume", volume="results", read_only=True)),
        ("on_checkpoint=None", Volume("data", "bucket", bucket="data")),  # buckets have no commit
    ],
)
def test_no_commit_is_passed_when_there_is_nothing_to_commit_or_no_callback(tmp_path, signature, volume):
    root = project_with_target(tmp_path, signature)
    assert "on_checkpoint" not in render(app_with_volumes(volume), root=root)


def test_a_target_whose_source_is_not_found_gets_no_callback(tmp_path):
    app = app_with_volumes(Volume("results", "volume", volume="results"))
    assert "on_checkpoint" not in render(app, root=tmp_path)


def test_a_read_only_modal_volume_is_mounted_read_only(tmp_path):
    app = app_with_volumes(Volume("reference", "volume", volume="reference", read_only=True))
    assert '"/reference": reference_volume.read_only()' in render(app, root=tmp_path)


def test_parameters_take_the_type_the_target_declares_when_the_default_fits():
    target = Target(
        "function",
        tuple(
            TargetParameter(name, annotation, None, required=True, keyword=True)
            for name, annotation in (("rate", "float"), ("xs", "list[int]"), ("where", "Path"), ("n", "int"))
        ),
    )
    function = Function(
        name="f",
        module="m",
        entry="e",
        args=args_of(("rate", 1), ("xs", (1, 2)), ("where", "a"), ("n", "many")),
    )
    params = {p.name: p for p in parameters(function, target)}
    assert params["rate"].source == "rate: float = 1.0"  # Modal's CLI then parses --rate 0.5 as a float
    assert params["xs"].source == "xs: list[int] | None = None" and params["xs"].type.is_json
    assert params["where"].source == 'where: str = "a"'
    assert params["n"].source == 'n: str = "many"'  # does not fit int: the lint's run-arg-type says so


def test_an_async_target_is_awaited_by_an_async_function(tmp_path):
    package = tmp_path / "runtime"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text("async def run(n: int = 1):\n    return n\n")
    source = render(
        app_with(args=args_of(("n", 2))),
        root=tmp_path,
    )
    assert "\nasync def job(n: int = 2):\n" in source
    assert "    return await run(n=n)\n" in source


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (".", "SPEC_DIR"),
        ("data", 'SPEC_DIR / "data"'),
        ("./data/raw/", 'SPEC_DIR / "data/raw"'),
        ("../shared", 'SPEC_DIR.parent / "shared"'),
        ("/srv/abs", '"/srv/abs"'),
    ],
)
def test_local_dirs_are_computed_from_the_spec_folder_the_module_finds_from_its_own(local, expected):
    image = Image("gpu", "debian_slim", "3.11", local_dirs=((local, "/app/x"),))
    app = dataclasses.replace(app_with(image="gpu"), images={"gpu": image})
    source = render(app, module_dir=Path.cwd() / "generated")
    without_spaces = "".join(source.split())
    assert "".join(f".add_local_dir({expected},".split()) in without_spaces
    relative = not local.startswith("/")
    assert ('SPEC_DIR = Path(__file__).parent.parent / "specs"\n' in source) == relative
    assert ("\nfrom pathlib import Path\n" in source) == relative


def test_the_spec_folder_is_found_from_wherever_the_module_is_written(tmp_path):
    image = Image("gpu", "debian_slim", "3.11", local_dirs=((".", "/app/x"),))
    app = dataclasses.replace(app_with(image="gpu"), images={"gpu": image})
    beside = render(app, module_dir=Path.cwd() / "specs")
    deeper = render(app, module_dir=Path.cwd() / "build" / "modal" / "apps")
    assert "SPEC_DIR = Path(__file__).parent\n" in beside
    assert 'SPEC_DIR = Path(__file__).parent.parent.parent.parent / "specs"\n' in deeper


# ------------------------------------------------------------------------------ names: lint's, asserted here


def test_the_naming_rules_live_in_lint_and_the_renderer_only_asserts_them():
    """One answer per name: lint's render/* rules report it; render() refuses it as an internal error."""
    images = {"a-b": Image("a-b", "debian_slim", None), "a_b": Image("a_b", "debian_slim", None)}
    app = dataclasses.replace(
        app_with(args=args_of(("sweep", 1))),
        images=images,
    )
    found = {(p.rule, p.path) for p in name_problems(app, ROOT)}
    assert ("render/reserved-name", ("functions", "job", "args", "sweep")) in found
    assert ("render/name-clash", ("images", "a_b")) in found
    assert all(lint.RULES[rule].severity == "error" for rule, _ in found)
    with pytest.raises(InternalError):
        render(app)


def test_identifiers_are_ascii_everywhere_the_module_writes_a_name():
    function = Function(name="job", module="runtime.jobs", entry="ŕun")
    problems = list(name_problems(App(name="demo", functions={"job": function}), ROOT))
    assert [p.rule for p in problems] == ["render/identifier"]
    for name in ("café", "ﬁle"):  # NFKC would make ﬁle the same name as file
        assert [
            p.rule
            for p in name_problems(
                app_with(args=args_of((name, 1))),
                ROOT,
            )
        ] == ["arg-name"]
