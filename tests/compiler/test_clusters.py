"""``cluster: {size, rdma}``: the lint at the offending line, the generated module as the real modal package
sees it (``fn.info().cluster_info``, ``fn.spec``), the body's torchrun environment, and plan/diff costs."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.platform.pricing import hourly_cost, load_prices
from tests.compiler.test_lint import position
from tests.helpers.cli_runner import mtc
from tests.helpers.generated_checks import decorator_keywords, import_generated

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SPEC = "tests/specs/valid/cluster.yaml"

SPEC = """\
version: 1
app: {name: nodes}
volumes:
  results: {volume: nodes-results}
defaults:
  cpu: 8
  memory: 32GiB
  timeout: 1h
functions:
  train:
    run: runtime.train:main
    args: {config: specs/train.yaml}
    gpu: "H100:8"
    cluster: {size: 2, rdma: true}
    retries: 2
    volumes: {/results: results}
"""


def cluster_findings(tmp_path: Path, text: str) -> list:
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    rules = ("cluster-size", "cluster-gpu", "cluster-containers", "checkpoint-volume")
    return [d for d in check(path).diagnostics if d.rule in rules]


def test_a_whole_host_cluster_has_no_findings(tmp_path):
    assert cluster_findings(tmp_path, SPEC) == []


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle", "message"),
    [
        ("size: 2,", "size: 1,", "cluster-size", "1,", "cluster.size is 1; expected 2 to 32 containers"),
        ("size: 2,", "size: 33,", "cluster-size", "33,", "cluster.size is 33"),
        (
            'gpu: "H100:8"',
            'gpu: "H100:4"',
            "cluster-gpu",
            '"H100:4"',
            "must take all GPUs of its host, H100:8",
        ),
        ('gpu: "H100:8"', 'gpu: "A10:4"', "cluster-gpu", '"A10:4"', "A10 does not come in whole 8-GPU hosts"),
        ('gpu: "H100:8"', 'gpu: "any:8"', "cluster-gpu", '"any:8"', "any does not come in whole"),
        ('    gpu: "H100:8"\n', "", "cluster-gpu", "cluster:", "a cluster needs GPUs"),
        (
            "    retries: 2\n",
            "    retries: 2\n    min_containers: 3\n",
            "cluster-containers",
            "3\n",
            "use 2 or 4",
        ),
        (
            "    retries: 2\n",
            "    retries: 2\n    max_containers: 1\n",
            "cluster-containers",
            "s: 1\n",
            "use 2",
        ),
    ],
)
def test_each_cluster_mistake_is_an_error_at_its_line(tmp_path, old, new, rule, needle, message):
    text = SPEC.replace(old, new, 1)
    assert text != SPEC
    (found,) = cluster_findings(tmp_path, text)
    assert (found.rule, found.severity) == (rule, "error")
    assert message in found.message
    line, col = position(text, needle)
    assert (found.line, found.col) == (line, col + (3 if needle == "s: 1\n" else 0))


def test_a_cluster_without_a_writable_volume_gets_the_preemption_warning(tmp_path):
    text = SPEC.replace("    volumes: {/results: results}\n", "")
    (found,) = cluster_findings(tmp_path, text)
    assert (found.rule, found.severity) == ("checkpoint-volume", "warning")
    assert "(a cluster of 2 containers: losing any one restarts them all) has retries" in found.message


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """profile -> (app, source, imported module) of the cluster spec."""
    folder = tmp_path_factory.mktemp("cluster")
    cwd = os.getcwd()
    os.chdir(ROOT)
    out = {}
    try:
        for profile in (None, "wide"):
            result = check(CLUSTER_SPEC, profile)
            assert not result.has_errors, [d.format() for d in result.diagnostics]
            source = render(result.app)
            path = folder / f"cluster_{profile}.py"
            path.write_text(source, encoding="utf-8")
            out[profile] = (result.app, source, import_generated(path))
    finally:
        os.chdir(cwd)
    return out


def test_modal_sees_a_cluster_of_two_whole_h100_hosts_with_rdma(generated):
    _, source, module = generated[None]
    info = module.train.info()
    assert (info.cluster_info.size, info.cluster_info.rdma) == (2, True)
    assert [tuple(gpu) for gpu in info.gpus] == [("H100", 8)]
    assert module.train._spec_.gpus == "H100:8"  # what `modal shell` would start
    # the sweep's 2 trials at once, 2 containers each (Modal refuses a count that is not a multiple at import)
    assert decorator_keywords(source, "train")["max_containers"] == 4
    assert module.evaluate.info().cluster_info is None
    assert "@modal.clustered(size=2, rdma=True)\ndef train(" in source
    assert "    set_torchrun_environment(gpus_per_node=8)\n    return main(" in source


def test_a_profile_changes_the_size(generated):
    _, source, module = generated["wide"]
    info = module.train.info()
    assert (info.cluster_info.size, info.cluster_info.rdma) == (4, True)
    assert decorator_keywords(source, "train")["min_containers"] == 4


def test_the_body_turns_the_cluster_context_into_torchruns_environment(generated, monkeypatch):
    from modal import _cluster

    real_environment = os.environ
    _, _, module = generated[None]
    context = _cluster.ClusterContext(
        rank=1,
        cluster_id="cu-test",
        container_ips=["fd00::a", "fd00::b"],
        container_ipv4_ips=[],
        fabric_ids=[],
    )
    monkeypatch.setattr(_cluster, "current_cluster_context", context)
    target = types.ModuleType("runtime.train")
    target.main = lambda **kwargs: {name: os.environ[name] for name in ENVIRONMENT}
    monkeypatch.setitem(sys.modules, "runtime.train", target)
    # the body sets os.environ: a copy, so that nothing leaks into the tests after this one
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k not in ENVIRONMENT})
    with pytest.warns(UserWarning):  # Modal: volumes are not mounted in .local()
        seen = module.train.local()
    assert "WORLD_SIZE" not in real_environment
    assert seen == {
        "MASTER_ADDR": "fd00::a",
        "MASTER_PORT": "29500",
        "NODE_RANK": "1",
        "WORLD_SIZE": "16",
        "LOCAL_WORLD_SIZE": "8",
    }


ENVIRONMENT = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")


def test_plan_multiplies_cost_by_the_size_and_diff_shows_a_size_change(capsys, tmp_path, generated):
    app, _, _ = generated[None]
    container = hourly_cost(app.functions["train"].resources, load_prices()).total
    code, out, _ = mtc(capsys, "plan", CLUSTER_SPEC, "--format", "json")
    assert code == 0
    row = next(r for r in json.loads(out)["functions"] if r["function"] == "train")
    assert row["nodes"] == 2
    assert row["hourly_usd"] == pytest.approx(2 * container)
    assert row["worst_case_usd"] == pytest.approx(2 * container * 24 * (1 + 3))
    assert row["sweep_hourly_usd"] == pytest.approx(2 * 2 * container)  # 2 trials at once, 2 containers each
    assert row["sweep_worst_case_usd"] == pytest.approx(2 * row["worst_case_usd"])
    code, out, err = mtc(capsys, "plan", CLUSTER_SPEC)
    assert "2 x H100:8" in out and "x cluster size" in out + err
    wider = ROOT / "tests/specs/valid/cluster_wider_tmp.yaml"
    wider.write_text((ROOT / CLUSTER_SPEC).read_text().replace("size: 2,", "size: 4,"), encoding="utf-8")
    try:
        code, out, _ = mtc(capsys, "diff", CLUSTER_SPEC, str(wider))
    finally:
        wider.unlink()
    assert code == 2
    before, after = 2 * container, 4 * container
    assert "~ train.cluster.size: 2 → 4" in out
    assert f"train: $/hour {before:.2f} → {after:.2f} (+{after - before:.2f})" in out


@pytest.mark.parametrize("extra", [["--backend", "modal"], ["--sweep"]])
def test_nodes_are_a_local_run_option(capsys, extra):
    code, _, err = mtc(capsys, "run", "train", CLUSTER_SPEC, "--nodes", "2", *extra)
    assert code == 3 and "--nodes is for a local run without --sweep" in err
