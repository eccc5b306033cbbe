"""End to end: `mtc run CLASS|WEB` serves on localhost under the function's limits, answers requests, and
stops cleanly on Ctrl-C with no process left behind."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from compiler.backends.local.serve import free_port
from tests.helpers.checkpoints import CHANNELS, LENGTH, write_checkpoint

pytest.importorskip("fastapi")
pytest.importorskip("runtime.train")
psutil = pytest.importorskip("psutil")

REPO = Path(__file__).resolve().parents[2]
START_S = 120

TARGETS_SPEC = """\
version: 1
app: {name: e2e-serve}
images:
  base: {from: debian_slim, python: "3.11", steps: [{pip: ["fastapi>=0.110"]}], add_local: {python: [tests]}}
defaults: {image: base, cpu: 1, memory: 2GiB, timeout: 1m}
functions:
  greeter:
    run: tests.serving_targets:Greeter
    methods:
      greet:
      echo: {web: {kind: fastapi_endpoint, method: POST}}
      web: {web: {kind: asgi_app}}
    args: {greeting: hi}
  add:
    run: tests.serving_targets:add
    args: {a: 1, b: 2}
    web: {kind: fastapi_endpoint}
  hello:
    run: tests.serving_targets:hello_wsgi
    web: {kind: wsgi_app}
"""


class Served:
    """`mtc run NAME ... --port PORT` in the background, its output in a file."""

    def __init__(self, tmp_path: Path, *args: str):
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        with self.log.open("w") as out:
            command = [sys.executable, "-m", "compiler.cli", "run", *args, "--port", str(self.port)]
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + START_S
        while "is listening on" not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)
        self._wait_for_socket(deadline)

    def _wait_for_socket(self, deadline: float) -> None:
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/docs", timeout=5).close()
                return
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, self.output()
                time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text()

    def request(
        self, path: str, body: bytes | None = None, kind: str = "application/json"
    ) -> tuple[int, object]:
        headers = {"Content-Type": kind} if body is not None else {}
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> tuple[int, list]:
        """Ctrl-C, as a user would: the exit code, and the processes of the run still alive after it."""
        tree = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        return code, alive


def test_a_class_is_built_once_and_serves_its_methods_and_endpoints(tmp_path):
    spec = tmp_path / "deployment.yaml"
    spec.write_text(TARGETS_SPEC)
    served = Served(tmp_path, "greeter", str(spec), "--volumes-dir", str(tmp_path / "volumes"))
    try:
        first = served.request("/greet", b'{"name": "ada"}')
        second = served.request("/greet", b'["bob"]')
        echoed = served.request("/echo", b'{"x": 1}')
        pinged = served.request("/web/ping")
        bad = served.request("/greet", b"not json")
    finally:
        code, alive = served.stop()
    assert first == (200, {"text": "hi ada", "built": 1, "pid": first[1]["pid"]})
    assert second[1]["text"] == "hi bob" and second[1]["built"] == 1  # the setup ran once
    assert second[1]["pid"] == first[1]["pid"]
    assert echoed == (200, {"echo": {"x": 1}, "built": 1})
    assert pinged == (200, {"pong": "hi"})
    assert bad[0] == 400
    assert f"serving greeter: POST {served.base}/greet" in served.output()
    assert "memory 2048 MiB" in served.output()
    assert (code, alive) == (130, [])


def test_a_web_function_takes_its_args_as_query_parameters(tmp_path):
    spec = tmp_path / "deployment.yaml"
    spec.write_text(TARGETS_SPEC)
    served = Served(tmp_path, "add", str(spec), "--volumes-dir", str(tmp_path / "volumes"))
    try:
        defaulted = served.request("/")
        given = served.request("/?a=20&b=22")
    finally:
        code, alive = served.stop()
    assert defaulted == (200, {"sum": 3})  # the spec's args are the defaults
    assert given == (200, {"sum": 42})
    assert (code, alive) == (130, [])


def test_a_wsgi_function_is_mounted_at_the_root(tmp_path):
    spec = tmp_path / "deployment.yaml"
    spec.write_text(TARGETS_SPEC)
    served = Served(tmp_path, "hello", str(spec), "--volumes-dir", str(tmp_path / "volumes"))
    try:
        answered = served.request("/anything")
    finally:
        code, alive = served.stop()
    assert answered == (200, {"hello": "wsgi"})
    assert (code, alive) == (130, [])


def test_the_example_predict_class_serves_a_checkpoint_on_cpu(tmp_path):
    volumes = tmp_path / "volumes"
    write_checkpoint(volumes / "mamba-results" / "runs" / "debug" / "best.pt")
    served = Served(tmp_path, "predict", "--profile", "debug", "--volumes-dir", str(volumes))
    windows = np.random.default_rng(0).normal(size=(4, CHANNELS, LENGTH)).astype(np.float32)
    npz = io.BytesIO()
    np.savez(npz, windows=windows)
    try:
        as_method = served.request("/predict", json.dumps({"windows": windows.tolist()}).encode())
        as_upload = served.request("/web/predict", npz.getvalue(), "application/x-npz")
        health = served.request("/web/health")
        refused = served.request("/web/predict", b'{"windows": [[1, 2]]}')
    finally:
        code, alive = served.stop()
    assert as_method[0] == 200 and as_upload[0] == 200, (as_method, as_upload)
    assert as_method[1]["classes"] == ["background", "seizure"]
    np.testing.assert_allclose(as_method[1]["probabilities"], as_upload[1]["probabilities"], rtol=1e-5)
    assert np.array(as_upload[1]["probabilities"]).shape == (4, 2)
    assert health[1]["channels"] == CHANNELS and health[1]["device"] == "cpu"
    assert refused == (
        400,
        {"error": f"windows have shape (1, 1, 2); this model takes (windows, {CHANNELS} channels, samples)"},
    )
    assert (code, alive) == (130, [])


def test_a_port_in_use_is_refused_before_the_class_is_built(tmp_path):
    spec = tmp_path / "deployment.yaml"
    spec.write_text(TARGETS_SPEC)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "compiler.cli", "run", "greeter", str(spec), "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is not free" in done.stderr
    assert "Traceback" not in done.stderr and "listening" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("add", "--sweep"), "is served: --sweep, --processes, --ddp and --nodes do not apply"),
        (("add", "--backend", "modal", "--port", "8000"), "--port is for serving"),
    ],
)
def test_options_that_do_not_apply_to_serving_are_usage_errors(tmp_path, args, words):
    spec = tmp_path / "deployment.yaml"
    spec.write_text(TARGETS_SPEC)
    name, *rest = args
    done = subprocess.run(
        [sys.executable, "-m", "compiler.cli", "run", name, str(spec), *rest],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert words in done.stderr
