"""Training across nodes on CPU (gloo): nodes x processes per node from torch's standard environment.

Each node is a process with torchrun's node-level variables (``MASTER_ADDR``, ``MASTER_PORT``,
``WORLD_SIZE``, ``NODE_RANK``), the variables the generated module sets from a Modal cluster's context and
``mtc run --nodes`` sets on localhost: 2 nodes x 1 process follow the loss curve of 1 process; a node
SIGKILLed mid-run fails the local run at once, naming the node, and the retry resumes to the weights of an
uninterrupted run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.backends.local import nodes as local_nodes
from compiler.backends.local import supervise
from compiler.backends.local.prepare import LocalRun
from runtime.train import checkpoint, distributed, entry, topology
from tests.runtime.test_ddp import (
    KILLED_RUN,
    assert_resumed_to_the_uninterrupted_weights,
    curve,
    small_config,
)
from tests.runtime.test_train import run_dir

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ the environment


def test_one_machine_needs_no_variables_and_a_node_gets_global_ranks():
    assert topology.from_environment(2, {}) == topology.Topology(per_node=2)
    env = {"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "16", "NODE_RANK": "1"}
    layout = topology.from_environment(8, {**env, "LOCAL_WORLD_SIZE": "8"})
    assert (layout.nodes, layout.node_rank, layout.first_rank, layout.world_size) == (2, 1, 8, 16)
    assert (layout.master_addr, layout.master_port) == ("10.0.0.1", 29500)


ADDRESS = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1234"}


@pytest.mark.parametrize(
    "env, message",
    [
        ({"WORLD_SIZE": "4", "NODE_RANK": "0"}, "MASTER_ADDR, MASTER_PORT not set"),
        (
            {**ADDRESS, "WORLD_SIZE": "3", "NODE_RANK": "0"},
            "WORLD_SIZE=3 is not a whole number of nodes of 2",
        ),
        ({**ADDRESS, "WORLD_SIZE": "4", "NODE_RANK": "2"}, "NODE_RANK=2, but WORLD_SIZE=4 makes 2 node"),
        ({**ADDRESS, "WORLD_SIZE": "four", "NODE_RANK": "0"}, "WORLD_SIZE='four': expected a whole number"),
        (
            {**ADDRESS, "WORLD_SIZE": "4", "NODE_RANK": "0", "LOCAL_WORLD_SIZE": "4"},
            "LOCAL_WORLD_SIZE=4, but",
        ),
    ],
)
def test_an_inconsistent_environment_is_refused_with_what_to_set(env, message):
    with pytest.raises(topology.TopologyError, match=message):
        topology.from_environment(2, env)


def test_a_torchrun_worker_is_one_rank():
    assert topology.torchrun_rank({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"}) == (3, 1, 4)
    assert topology.torchrun_rank({"WORLD_SIZE": "4", "NODE_RANK": "0"}) is None


# ------------------------------------------------------------------------------------------ 2 nodes


def node_env(node: int, nodes: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        distributed.NPROC_ENV: "1",
        "OMP_NUM_THREADS": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(nodes),
        "NODE_RANK": str(node),
    }


CURVE_RUN = {"train": {"epochs": 2, "log_every": 1, "checkpoint_every": 3, "seed": 5}}


@pytest.fixture(scope="module")
def single_curve(tmp_path_factory):
    """The loss curve of one process on the curve run."""
    folder = tmp_path_factory.mktemp("single")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(distributed.NPROC_ENV, "1")
        single = entry.main(small_config(folder, **CURVE_RUN), resume=False)
    return curve(Path(single["run_dir"]))


def assert_follows(single_curve, folder: Path) -> None:
    steps, losses = single_curve
    node_steps, node_losses = curve(run_dir(folder))
    assert node_steps == steps and len(steps) > 8
    np.testing.assert_allclose(node_losses, losses, rtol=1e-4)
    state = checkpoint.load(run_dir(folder) / "last.pt")
    assert state["step"] == 8 and len(state["rng_by_rank"]) == 2


def test_two_nodes_of_one_process_follow_the_loss_curve_of_one(tmp_path, single_curve):
    config = small_config(tmp_path, **CURVE_RUN)
    port = local_nodes.free_port()
    code = "import sys; from runtime.train import entry; entry.main(sys.argv[1])"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", code, config],
            env=node_env(node, 2, port),
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    logs = [process.communicate(timeout=240)[1] for process in started]
    assert [process.returncode for process in started] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "data-parallel training: 2 nodes x 1, node 0: 2 processes (gloo), global batch 32" in logs[0]
    assert_follows(single_curve, tmp_path)


def test_torchrun_workers_train_as_their_ranks_and_follow_the_same_curve(tmp_path, single_curve):
    config = small_config(tmp_path, **CURVE_RUN)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "runtime.train", config]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_follows(single_curve, tmp_path)


def local_run(config: str, nodes: int, *, retries: int, target: str = "tests.targets:train_then_lose_node"):
    run = LocalRun(
        function="train",
        target=target,
        workdir=REPO,
        kwargs={"config": config, "marker": str(Path(config).parent / "killed")},
        mounts=(),
        path_map={},
        cores=2,
        declared_cpu=2,
        memory_mib=None,
        timeout_s=300,
        attempts=1 + retries,
        retry_delays_s=(0.0,) * retries,
        env={distributed.NPROC_ENV: "1", "PYTHONUNBUFFERED": "1"},
    )
    return local_nodes.with_nodes(run, nodes, print)


def test_a_killed_node_fails_the_run_naming_it_and_the_retry_resumes_to_the_uninterrupted_weights(
    tmp_path, capfd
):
    straight = small_config(tmp_path / "straight", **KILLED_RUN)
    killed = small_config(tmp_path / "killed", **KILLED_RUN)
    (tmp_path / "straight" / "killed").touch()  # the marker: this run is never interrupted
    said: list[str] = []
    assert supervise.execute(local_run(straight, 2, retries=0), said.append) == 0, said
    said.clear()
    assert supervise.execute(local_run(killed, 2, retries=1), said.append) == 0, said
    output = capfd.readouterr().err
    failure = next(m for m in said if m.startswith("error: node"))
    assert failure.startswith("error: node 1 of 2 was killed by signal 9; the other nodes were stopped")
    assert "(attempt 1 of 2)" in failure and any("retrying train (attempt 2 of 2)" in m for m in said)
    assert "resumed from" in output
    assert_resumed_to_the_uninterrupted_weights(tmp_path)


def test_nodes_are_capped_by_the_cores_and_get_torchruns_variables(tmp_path):
    said: list[str] = []
    run = local_run(str(tmp_path / "c.yaml"), 4, retries=0)
    assert run.nodes == 2
    capped = local_nodes.with_nodes(run, 4, said.append)
    assert said == ["4 nodes of 1 process(es) asked for, but train may use 2 core(s) here; running 2 node(s)"]
    first, second = local_nodes.node_environments(capped)
    assert first["MASTER_PORT"] == second["MASTER_PORT"] and first["MASTER_ADDR"] == "127.0.0.1"
    assert (first["NODE_RANK"], second["NODE_RANK"], second["WORLD_SIZE"]) == ("0", "1", "2")
    assert local_nodes.cores_of(capped, 0) == (1, 0) and local_nodes.cores_of(capped, 1) == (1, 1)
