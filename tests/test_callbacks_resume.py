"""kreg.callbacks._resume: EarlyStopping's state files beside BackupAndRestore's."""

import json
import os

import numpy as np
import pytest

from kreg.callbacks._resume import KEEP, ResumeFiles, atomic_write


def _state(best_weights=None, wait=1):
    return {
        "wait": wait,
        "best": 0.5,
        "best_epoch": 1,
        "stopped_epoch": 0,
        "stop_reason": None,
        "next_epoch": 2,
        "monitor_history": [0.7, 0.5],
        "train_history": [],
        "best_weights": best_weights,
    }


def _resume_at(directory, epoch):
    with open(os.path.join(directory, "training_metadata.json"), "w") as f:
        json.dump({"epoch": epoch}, f)


def test_the_state_of_the_epoch_backup_and_restore_resumes_at_comes_back(tmp_path):
    files = ResumeFiles(str(tmp_path), "kreg_early_stopping.val_loss.GL")
    weights = [np.arange(3.0), np.ones((2, 2), "float32")]
    files.write(_state(weights, wait=1), next_epoch=1, best_epoch=0, weights_changed=True)
    files.write(_state(weights, wait=2), next_epoch=2, best_epoch=0, weights_changed=False)
    assert files.read() is None  # BackupAndRestore does not resume: nothing to read
    _resume_at(tmp_path, 1)
    state = files.read()
    assert state["wait"] == 1 and state["monitor_history"] == [0.7, 0.5]
    for got, want in zip(state["best_weights"], weights):
        np.testing.assert_array_equal(got, want)
    assert sorted(os.listdir(tmp_path)) == [
        "kreg_early_stopping.val_loss.GL.1.json",
        "kreg_early_stopping.val_loss.GL.2.json",
        "kreg_early_stopping.val_loss.GL.best0.weights.npz",
        "training_metadata.json",
    ]


def test_only_the_last_states_and_the_weights_they_name_are_kept(tmp_path):
    files = ResumeFiles(str(tmp_path), "stem")
    for epoch in range(1, 5):  # a new best each epoch: a new weights file each time
        files.write(
            _state([np.full(2, epoch)]), next_epoch=epoch, best_epoch=epoch, weights_changed=True
        )
    assert sorted(files.states()) == [3, 4] and KEEP == 2
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".npz")) == [
        "stem.best3.weights.npz",
        "stem.best4.weights.npz",
    ]
    files.write(_state(None), next_epoch=5, best_epoch=4, weights_changed=False)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".npz")) == [
        "stem.best4.weights.npz"
    ]


def test_a_missing_state_for_the_resumed_epoch_says_what_to_do(tmp_path):
    files = ResumeFiles(str(tmp_path), "stem")
    files.write(_state(None), next_epoch=1, best_epoch=0, weights_changed=False)
    _resume_at(tmp_path, 2)  # BackupAndRestore saved epoch 2, EarlyStopping did not
    with pytest.raises(
        ValueError,
        match=r"argument `backup`: expected EarlyStopping's state "
        r"saved at the end of epoch 2.*Received: states for epochs \[1\].*list "
        r"EarlyStopping\(backup=...\) before its BackupAndRestore",
    ):
        files.read()


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path):
    path = str(tmp_path / "f.json")
    atomic_write(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    with open(path, "rb") as f:
        assert f.read() == b"old"
