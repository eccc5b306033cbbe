"""``mtc import`` of a hand-written ``@app.cls`` class: the class moves into the jobs module as the target of
the generated wrapper, its parameters become ``args``, its methods ``methods``, and Modal sees the generated
class as it saw the hand-written one. What the wrapper cannot do the same way is one warning at its line."""

from __future__ import annotations

import sys
from pathlib import Path

from ruamel.yaml import YAML

from compiler.codegen.render import render
from compiler.lint.check import check
from tests.compiler.test_import import imported, info
from tests.helpers.generated_checks import import_generated

GREETER_APP = '''import modal

app = modal.App("greeter")


def joined(words, name):
    return " ".join([*words, name])


@app.cls(image=modal.Image.debian_slim(), cpu=2, memory=2048, timeout=600, min_containers=1)
@modal.concurrent(max_inputs=8, target_inputs=4)
class Greeter:
    """Greets whoever asks."""

    greeting: str = modal.parameter(default="hi")
    times: int = modal.parameter(default=2)

    @modal.enter()
    def load(self):
        self.words = [self.greeting] * self.times

    @modal.method()
    def greet(self, name: str = "world"):
        return joined(self.words, name)

    @modal.fastapi_endpoint(method="POST", label="greeter-echo")
    def echo(self, body: dict):
        return {"echo": body, "words": self.words}

    @modal.asgi_app(requires_proxy_auth=True)
    def web(self):
        return None

    def helper(self):
        return len(self.words)


@app.function(cpu=1, timeout=300)
@modal.concurrent(max_inputs=20)
@modal.fastapi_endpoint(docs=True, label="adder")
def add(a: int = 1, b: int = 2):
    return a + b
'''


def import_greeter(capsys, tmp_path: Path, source: str = GREETER_APP) -> tuple[int, str, Path]:
    app = tmp_path / "greeter.py"
    app.write_text(source, encoding="utf-8")
    spec = tmp_path / "specs" / "deployment.yaml"
    code, err = imported(capsys, app, spec)
    return code, err, spec


def test_a_hand_written_class_imports_as_a_class_entry(capsys, tmp_path):
    code, err, spec = import_greeter(capsys, tmp_path)
    assert code == 0, err
    entry = YAML(typ="safe").load(spec.read_text())["functions"]["greeter"]
    assert entry["run"] == "greeter_jobs:Greeter"
    assert entry["args"] == {"greeting": "hi", "times": 2}
    assert entry["methods"] == {
        "greet": None,
        "echo": {"web": {"kind": "fastapi_endpoint", "method": "POST", "label": "greeter-echo"}},
        "web": {"web": {"kind": "asgi_app", "requires_proxy_auth": True}},
    }
    assert entry["concurrency"] == {"max_inputs": 8, "target_inputs": 4}
    assert (entry["cpu"], entry["memory"], entry["timeout"], entry["min_containers"]) == (2, 2048, 600, 1)
    add = YAML(typ="safe").load(spec.read_text())["functions"]["add"]
    assert (add["web"], add["concurrency"]) == (
        {"kind": "fastapi_endpoint", "docs": True, "label": "adder"},
        {"max_inputs": 20},
    )


def test_modal_sees_the_generated_class_as_the_hand_written_one(capsys, tmp_path):
    code, err, spec = import_greeter(capsys, tmp_path)
    assert code == 0, err
    result = check(spec)
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    generated = spec.parent / "greeter.py"
    generated.write_text(render(result.app, module_dir=spec.parent), encoding="utf-8")
    hand, module = import_generated(tmp_path / "greeter.py"), import_generated(generated)
    before = info(hand.Greeter._get_class_service_function())
    after = info(module.Greeter._get_class_service_function())
    assert {k: v for k, v in after.items() if before[k] != v} == {}
    assert after["method_names"] == ["greet", "echo", "web"]
    add_before, add_after = info(hand.add), info(module.add)
    assert {k: v for k, v in add_after.items() if add_before[k] != v} == {}
    assert (add_after["web_info"].method, add_after["concurrency_info"].max_inputs) == ("GET", 20)
    assert (after["concurrency_info"].max_inputs, after["concurrency_info"].target_inputs) == (8, 4)


def test_the_moved_class_takes_its_parameters_and_runs_its_enter_methods(capsys, tmp_path):
    """The generated wrapper builds ``Greeter(greeting=..., times=...)``: the moved class sets them and
    runs its @modal.enter method, as Modal did before the first input."""
    code, err, spec = import_greeter(capsys, tmp_path)
    assert code == 0, err
    jobs = (spec.parent / "greeter_jobs.py").read_text()
    assert "modal.parameter(" not in jobs
    assert not [line for line in jobs.splitlines() if line.lstrip().startswith("@")]
    sys.path.insert(0, str(spec.parent))
    try:
        greeter = import_generated(spec.parent / "greeter_jobs.py").Greeter(greeting="yo", times=3)
    finally:
        sys.path.remove(str(spec.parent))
    assert greeter.greet("ada") == "yo yo yo ada"
    assert greeter.echo({"a": 1}) == {"echo": {"a": 1}, "words": ["yo", "yo", "yo"]}
    assert greeter.helper() == 3


SNAPSHOT_ENTER = "    @modal.enter(snap=True)\n    def warm(self):\n        pass\n\n"
EXIT_AND_GENERATOR = (
    "    @modal.exit()\n    def close(self):\n        pass\n\n    @modal.method()\n    def stream(self):\n"
    "        yield 1\n"
)


def test_what_the_wrapper_cannot_pass_on_is_a_warning_at_its_line(capsys, tmp_path):
    """A snapshot's settings, a web app's arguments, an exit hook and a generator method: one warning each,
    and the moved class still runs its snapshot enter method first, as Modal does."""
    source = (
        GREETER_APP.replace("min_containers=1)", "min_containers=1, enable_memory_snapshot=True)")
        .replace("    @modal.method()\n    def greet", SNAPSHOT_ENTER + "    @modal.method()\n    def greet")
        .replace("    def web(self):\n", "    def web(self, path: str):\n")
        .replace("    def helper(self):\n        return len(self.words)\n", EXIT_AND_GENERATOR)
    )
    code, err, spec = import_greeter(capsys, tmp_path, source)
    assert code == 1
    lines = source.splitlines()
    web, close, stream = (
        lines.index(f"    def {n}") + 1 for n in ("web(self, path: str):", "close(self):", "stream(self):")
    )
    assert [
        line.split(": warning: ")[1].split(" [import]")[0] for line in err.splitlines() if "warning" in line
    ] == [
        "`enable_memory_snapshot=`: has no key in the spec",
        "`web` takes ['path']: the generated endpoint passes no query parameters",
        "@modal.exit `close`: the generated class runs no exit hook",
        "`stream` is async or a generator: the generated method is a plain one",
    ]
    app = tmp_path / "greeter.py"
    assert [line.split(": warning: ")[0] for line in err.splitlines() if "warning" in line] == [
        f"{app}:{line}" for line in (10, web, close - 1, stream)
    ]
    init = (spec.parent / "greeter_jobs.py").read_text().split("def __init__")[1]
    assert init.index("self.warm()") < init.index("self.load()")


def test_a_class_with_its_own_init_is_reported(capsys, tmp_path):
    source = GREETER_APP.replace(
        '    """Greets whoever asks."""\n',
        '    """Greets whoever asks."""\n\n    def __init__(self):\n        pass\n',
    )
    code, err, _ = import_greeter(capsys, tmp_path, source)
    assert code == 1
    assert "cannot take its parameters by name" in err


LOOKALIKE_APP = """import modal

app = modal.App("lookalike")


@app.function()
def classify(text: str = "x"):
    return text


@app.cls()
class Classify:
    task: str = modal.parameter(default="sentiment")

    @modal.enter()
    def setup(self):
        from transformers import pipeline

        self.instance = pipeline(task=self.task)

    @modal.method()
    def predict(self, text: str):
        return self.instance(text)[0]
"""


def test_a_class_that_only_looks_generated_moves_and_keeps_its_name_apart(capsys, tmp_path):
    """The enter method builds ``self.instance`` as mtc's does, but `predict` does more than call the
    instance's method: the class is the target, not `transformers:pipeline`. Its entry does not take the
    function `classify`'s key, and the new key, generated as another class name, is a warning."""
    code, err, spec = import_greeter(capsys, tmp_path, LOOKALIKE_APP)
    functions = YAML(typ="safe").load(spec.read_text())["functions"]
    assert functions["classify"]["run"] == "lookalike_jobs:classify"
    assert functions["classify_2"]["run"] == "lookalike_jobs:Classify"
    assert code == 1 and "`Classify` is generated as `Classify2`" in err


def test_an_unreadable_web_keyword_is_a_warning_and_keeps_the_concurrency(capsys, tmp_path):
    source = (
        'import modal\n\napp = modal.App("domains")\n\n\n@app.function()\n@modal.concurrent(max_inputs=5)\n'
        '@modal.fastapi_endpoint(custom_domains=["api.example.com"])\ndef hello():\n    return "hi"\n'
    )
    code, err, spec = import_greeter(capsys, tmp_path, source)
    assert code == 1
    assert "greeter.py:8: warning: @modal.fastapi_endpoint's `custom_domains=` has no key in the spec" in err
    hello = YAML(typ="safe").load(spec.read_text())["functions"]["hello"]
    assert hello["concurrency"] == {"max_inputs": 5} and "web" not in hello
