"""Classes, web endpoints and concurrency: the lint's rules, the generated code, and what the real `modal`
package sees when it imports the module (compared with the same app written by hand)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.generated_checks import import_generated

REPO = Path(__file__).resolve().parents[2]

SPEC = """\
version: 1
app: {name: serving-demo}
images:
  base: {from: debian_slim, python: "3.11", steps: [{pip: ["fastapi>=0.110"]}], add_local: {python: [tests]}}
defaults: {image: base, timeout: 5m}
functions:
  greeter:
    run: tests.serving_targets:Greeter
    methods:
      greet:
      shout: {}
      echo: {web: {kind: fastapi_endpoint, method: POST, label: greeter-echo}}
      web: {web: {kind: asgi_app, requires_proxy_auth: true}}
    args: {greeting: hi, times: 2}
    gpu: T4
    cpu: 2
    memory: 4GiB
    min_containers: 1
    concurrency: {max_inputs: 8, target_inputs: 4}
    lint: {ignore: {concurrency-gpu-memory: "tiny model"}}
  add:
    run: tests.serving_targets:add
    args: {a: 1, b: 2}
    cpu: 1
    web: {kind: fastapi_endpoint, docs: true}
    concurrency: {max_inputs: 20}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def findings(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    """(rule, severity, message) of every finding of the serving rules and the schema."""
    result = check(write(tmp_path, text), None)
    return [(d.rule, d.severity, d.message) for d in result.diagnostics]


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # `tests.serving_targets` is found from the spec's folder's project


def test_the_example_spec_is_clean(tmp_path, in_repo):
    assert findings(tmp_path, SPEC) == []


BROKEN = [
    # Modal's web_server forwards to a port: none given
    (
        ("web: {kind: fastapi_endpoint, docs: true}", "web: {kind: web_server}"),
        "web-options",
        "without a port",
    ),
    (("web: {kind: fastapi_endpoint, docs: true}", "web: {kind: asgi_app, port: 80}"), "web-options", "port"),
    (
        ("web: {kind: fastapi_endpoint, docs: true}", "web: {kind: asgi_app}"),
        "web-app-args",
        "has args (a, b)",
    ),
    (
        ("{max_inputs: 8, target_inputs: 4}", "{max_inputs: 2, target_inputs: 4}"),
        "concurrency-target",
        "above",
    ),
    (("args: {greeting: hi, times: 2}", "args: {greeting: hi, times: 2.5}"), "class-parameter-type", "float"),
    (("args: {greeting: hi, times: 2}", "args: {greeting: hi, times: [2]}"), "class-parameter-type", "list"),
    (("      shout: {}", "      setup: {}"), "class-names", "'setup'"),
    (("run: tests.serving_targets:Greeter", "run: tests.serving_targets:add"), "class-target", "not a class"),
    (
        ("run: tests.serving_targets:add", "run: tests.serving_targets:Greeter"),
        "run-target-shape",
        "`methods`",
    ),
    (
        (
            "    concurrency: {max_inputs: 20}",
            "    concurrency: {max_inputs: 20}\n    schedule: {period: 1h}",
        ),
        "web-with-schedule",
        "schedule",
    ),
    (
        ("    concurrency: {max_inputs: 20}", "    max_concurrent_inputs: 20"),
        "schema",
        "concurrency: {max_inputs: N}",
    ),
    (
        (
            "    concurrency: {max_inputs: 20}",
            '    concurrency: {max_inputs: 20}\n    gpu: "H100:8"\n    cluster: {size: 2}',
        ),
        "cluster-serving",
        "is a web endpoint and cannot be clustered",
    ),
    (
        ("    min_containers: 1\n", "    min_containers: 2\n    cluster: {size: 2}\n"),
        "cluster-serving",
        "is a class and cannot be clustered",
    ),
    (("label: greeter-echo", "label: Greeter_Echo"), "schema", "lowercase letters"),
    (("kind: asgi_app,", "kind: asgi,"), "schema", "did you mean 'asgi_app'"),
]


@pytest.mark.parametrize(("edit", "rule", "words"), BROKEN)
def test_a_broken_serving_setting_is_reported_where_it_is(tmp_path, in_repo, edit, rule, words):
    old, new = edit
    assert old in SPEC
    found = findings(tmp_path, SPEC.replace(old, new, 1))
    matching = [f for f in found if f[0].startswith(rule)]
    assert matching, found
    assert any(words in message for _, _, message in matching), matching


def test_duplicate_labels_are_an_error(tmp_path, in_repo):
    text = SPEC.replace("label: greeter-echo", "label: same").replace(
        "web: {kind: fastapi_endpoint, docs: true}", "web: {kind: fastapi_endpoint, docs: true, label: same}"
    )
    found = findings(tmp_path, text)
    assert [f[0] for f in found] == ["web-label-unique"], found


def test_concurrency_on_a_gpu_gets_a_memory_warning(tmp_path, in_repo):
    found = findings(
        tmp_path, SPEC.replace('    lint: {ignore: {concurrency-gpu-memory: "tiny model"}}\n', "")
    )
    assert found == [("concurrency-gpu-memory", "warning", found[0][2])], found
    assert "up to 8 inputs at once on one GPU" in found[0][2]


# ------------------------------------------------------------------------------------- generated code


@pytest.fixture
def generated(tmp_path, in_repo):
    result = check(write(tmp_path, SPEC), None)
    assert not result.has_errors
    source = render(result.app)
    path = tmp_path / "serving_demo.py"
    path.write_text(source, encoding="utf-8")
    return source, import_generated(path)


def test_a_class_is_written_as_a_hand_written_modal_class(generated):
    source, _ = generated
    expected = '''\
        @app.cls(
            image=base_image,
            gpu="T4",
            cpu=2,
            memory=4096,
            timeout=5 * 60,
            min_containers=1,
        )
        @modal.concurrent(max_inputs=8, target_inputs=4)
        class Greeter:
            """tests.serving_targets:Greeter, built once per container; each method calls the instance's."""

            greeting: str = modal.parameter(default="hi")
            times: int = modal.parameter(default=2)

            @modal.enter()
            def setup(self):
                from tests.serving_targets import Greeter

                self.instance = Greeter(greeting=self.greeting, times=self.times)

            @modal.method()
            def greet(self, *args, **kwargs):
                return self.instance.greet(*args, **kwargs)

            @modal.method()
            def shout(self, *args, **kwargs):
                return self.instance.shout(*args, **kwargs)

            @modal.fastapi_endpoint(method="POST", label="greeter-echo")
            def echo(self, body: dict):
                return self.instance.echo(body)

            @modal.asgi_app(requires_proxy_auth=True)
            def web(self):
                return self.instance.web()
        '''
    assert textwrap.dedent(expected) in source


def test_a_web_function_stacks_concurrency_and_its_web_decorator(generated):
    source, _ = generated
    expected = """\
        @app.function(image=base_image, cpu=1, timeout=5 * 60)
        @modal.concurrent(max_inputs=20)
        @modal.fastapi_endpoint(docs=True)
        def add(a: int = 1, b: int = 2):
            from tests.serving_targets import add

            return add(a=a, b=b)
        """
    assert textwrap.dedent(expected) in source


HAND_WRITTEN = """\
import modal

app = modal.App("serving-demo")


@app.cls(image=modal.Image.debian_slim(), gpu="T4", cpu=2, memory=4096, timeout=300, min_containers=1)
@modal.concurrent(max_inputs=8, target_inputs=4)
class Greeter:
    greeting: str = modal.parameter(default="hi")
    times: int = modal.parameter(default=2)

    @modal.enter()
    def setup(self):
        self.instance = None

    @modal.method()
    def greet(self, name: str = "world"): ...

    @modal.method()
    def shout(self, name: str = "world"): ...

    @modal.fastapi_endpoint(method="POST", label="greeter-echo")
    def echo(self, body: dict): ...

    @modal.asgi_app(requires_proxy_auth=True)
    def web(self): ...
"""
INFO_FIELDS = ("cpu", "memory_mib", "gpus", "timeout", "concurrency_info", "method_names", "method_details")


def test_modal_sees_the_class_as_it_sees_a_hand_written_one(generated, tmp_path):
    _, module = generated
    path = tmp_path / "hand_written.py"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    hand = import_generated(path)
    generated_info = module.Greeter._get_class_service_function().info()
    hand_info = hand.Greeter._get_class_service_function().info()
    for field in INFO_FIELDS:
        assert getattr(generated_info, field) == getattr(hand_info, field), field
    assert generated_info.method_names == ["greet", "shout", "echo", "web"]
    assert generated_info.concurrency_info.max_inputs == 8
    assert generated_info.concurrency_info.target_inputs == 4


def test_modal_sees_the_web_function_and_its_concurrency(generated):
    _, module = generated
    info = module.add.info()
    assert info.concurrency_info.max_inputs == 20
    assert info.web_info is not None
    assert info.web_info.method == "GET"


def test_classes_are_not_local_entrypoint_actions(generated):
    _, module = generated
    assert list(module.ACTIONS) == ["add"]


# ------------------------------------------------------------------------------------------ plan, diff


def test_plan_prices_a_class_per_container_hour_and_its_warm_containers_per_day(tmp_path, in_repo):
    from compiler.platform.pricing import load_prices
    from compiler.review.plan import footer, format_table, plan_rows

    app = check(write(tmp_path, SPEC), None).app
    prices = load_prices()
    rows = {row.function: row for row in plan_rows(app, prices)}
    greeter = rows["greeter"]
    assert (greeter.kind, rows["add"].kind) == ("class", "web endpoint")
    assert greeter.standing_daily_usd == pytest.approx(greeter.hourly_usd * 24)  # min_containers: 1
    assert "greeter (class)" in format_table(list(rows.values()))
    assert (
        f"greeter keeps 1 container warm (min_containers): ${greeter.standing_daily_usd:.2f}/day"
        in footer(prices, list(rows.values()))
    )
    assert "add keeps" not in footer(prices, list(rows.values()))


def test_diff_shows_a_class_method_endpoint_and_concurrency_change(tmp_path, in_repo):
    from compiler.platform.pricing import load_prices
    from compiler.review.diff import diff_apps

    old = check(write(tmp_path, SPEC), None).app
    changed = SPEC.replace("max_inputs: 8, target_inputs: 4", "max_inputs: 16, target_inputs: 4").replace(
        "      shout: {}\n", "      shout: {web: {kind: fastapi_endpoint}}\n"
    )
    new = check(write(tmp_path, changed), None).app
    found = {change.key: (change.old, change.new) for change in diff_apps(old, new, load_prices()).changes}
    assert found["greeter.concurrency.max_inputs"] == ("8", "16")
    assert found["greeter.methods.shout"] == ("method", "fastapi_endpoint")


def test_a_spec_of_classes_only_has_no_local_entrypoint(tmp_path, in_repo):
    only_class = SPEC[: SPEC.index("  add:\n")]
    result = check(write(tmp_path, only_class), None)
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    path = tmp_path / "classes_only.py"
    path.write_text(render(result.app), encoding="utf-8")
    module = import_generated(path)
    assert not hasattr(module, "ACTIONS") and not hasattr(module, "main")
    assert module.Greeter._get_class_service_function().info().method_names == [
        "greet",
        "shout",
        "echo",
        "web",
    ]
