"""runtime.serve: a checkpoint loaded once answers batches of windows; bad requests get a message."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from runtime.nn.config import ModelConfig
from runtime.nn.models.signal import build_model
from runtime.serve import Predictor, ServeError
from runtime.train import checkpoint
from tests.helpers.checkpoints import CHANNELS, LENGTH, write_checkpoint


def test_a_predictor_matches_the_model_it_loaded_with_its_normalisation(tmp_path):
    path = write_checkpoint(tmp_path / "best.pt")
    predictor = Predictor(str(path), device="cpu")
    windows = np.random.default_rng(0).normal(size=(5, CHANNELS, LENGTH)).astype(np.float32)
    answer = predictor.predict(windows.tolist())
    state = checkpoint.load(path)
    model = build_model(ModelConfig.from_dict(state["model_config"]), CHANNELS, 2)
    model.load_state_dict(state["model"])
    with torch.no_grad():
        expected = torch.softmax(model.eval()(torch.from_numpy(windows)), dim=1).numpy()
    assert answer["classes"] == ["background", "seizure"]
    assert answer["windows"] == 5
    np.testing.assert_allclose(np.array(answer["probabilities"]), expected, rtol=1e-5, atol=1e-6)
    assert "timestep_probabilities" not in answer
    assert model.channel_mean.tolist() == [1.0, 2.0, 3.0]  # the normalisation came with the weights


def test_a_per_timestep_model_answers_per_timestep_and_per_window(tmp_path):
    predictor = Predictor(str(write_checkpoint(tmp_path / "best.pt", per_timestep=True)), device="cpu")
    answer = predictor.predict(np.zeros((2, CHANNELS, LENGTH), dtype=np.float32))
    steps = np.array(answer["timestep_probabilities"])
    assert steps.shape == (2, 2, LENGTH)
    np.testing.assert_allclose(np.array(answer["probabilities"]), steps.mean(axis=-1), rtol=1e-6)


@pytest.mark.parametrize(
    ("windows", "words"),
    [
        ([[1.0, 2.0]], "this model takes (windows, 3 channels, samples)"),
        ("not numbers", "windows must be numbers"),
        (np.full((1, CHANNELS, 4), np.nan), "NaN"),
        (np.zeros((0, CHANNELS, 4)), "0 windows in one request"),
    ],
)
def test_windows_of_the_wrong_shape_or_values_are_refused_with_a_message(tmp_path, windows, words):
    predictor = Predictor(str(write_checkpoint(tmp_path / "best.pt")), device="cpu")
    with pytest.raises(ServeError) as refused:
        predictor.predict(windows)
    assert words in str(refused.value)


def test_a_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        Predictor(str(tmp_path / "best.pt"), device="cpu")


def test_request_bodies_are_read_as_json_or_npz():
    pytest.importorskip("fastapi")
    from runtime.serve.web import read_windows

    buffer = io.BytesIO()
    np.savez(buffer, windows=np.ones((2, 3, 4), dtype=np.float32))
    assert read_windows(buffer.getvalue(), "application/x-npz").shape == (2, 3, 4)
    assert read_windows(b'{"windows": [[[1]]]}', "application/json; charset=utf-8") == [[[1]]]
    for body, kind, words in (
        (b"{}", "application/json", '"windows" key'),
        (b"nope", "application/json", "not JSON"),
        (b"nope", "application/x-npz", "not a readable .npz"),
    ):
        with pytest.raises(ServeError) as refused:
            read_windows(body, kind)
        assert words in str(refused.value)
    empty = io.BytesIO()
    np.savez(empty, other=np.ones(2))
    with pytest.raises(ServeError, match="no 'windows' array"):
        read_windows(empty.getvalue(), "application/octet-stream")
