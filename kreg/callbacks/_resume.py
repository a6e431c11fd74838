"""EarlyStopping's resume files: its state at each epoch end, beside BackupAndRestore's.

One state file per epoch end, ``<stem>.<next epoch>.json``, the last two kept, and the
best weights of each kept state in ``<stem>.best<epoch>.weights.npz``: whichever of
EarlyStopping and BackupAndRestore writes first at an epoch end, the state that matches
the epoch BackupAndRestore resumes at (its ``training_metadata.json``) is still there.
Every file is written through a temporary one, so a crash never leaves half a file.
"""

import json
import os

import numpy as np

__all__ = []  # private: EarlyStopping's persistence

#: The states kept: the epoch BackupAndRestore resumes at may be the last or the one before.
KEEP = 2


class ResumeFiles:
    """The state files of one EarlyStopping (``stem`` names it) in ``directory``."""

    def __init__(self, directory, stem):
        self.directory = directory
        self.stem = os.path.join(directory, stem)

    def states(self):
        """``{next_epoch: path}`` of the state files in the directory."""
        prefix, found = os.path.basename(self.stem) + ".", {}
        if os.path.isdir(self.directory):
            for name in os.listdir(self.directory):
                middle = name[len(prefix) : -len(".json")] if name.startswith(prefix) else ""
                if name.endswith(".json") and middle.isdigit():
                    found[int(middle)] = os.path.join(self.directory, name)
        return found

    def write(self, state, next_epoch, best_epoch, weights_changed):
        """Write ``state`` (``best_weights`` apart, in an .npz written when it changed)."""
        os.makedirs(self.directory, exist_ok=True)
        state = dict(state)
        weights = state.pop("best_weights")
        state["weights_file"] = None
        if weights is not None:
            path = f"{self.stem}.best{best_epoch}.weights.npz"
            if weights_changed or not os.path.exists(path):
                atomic_write(path, lambda f: np.savez(f, *map(np.asarray, weights)))
            state["weights_file"] = os.path.basename(path)
        atomic_write(
            f"{self.stem}.{next_epoch}.json", lambda f: f.write(json.dumps(state).encode())
        )
        self.prune()

    def prune(self):
        """Keep the last :data:`KEEP` states and the weight files they name."""
        files = self.states()
        keep = sorted(files)[-KEEP:]
        needed = set()
        for epoch, path in files.items():
            if epoch not in keep:
                os.remove(path)
                continue
            with open(path) as f:
                needed.add(json.load(f).get("weights_file"))
        prefix = os.path.basename(self.stem) + ".best"
        for name in os.listdir(self.directory):
            if name.startswith(prefix) and name.endswith(".weights.npz") and name not in needed:
                os.remove(os.path.join(self.directory, name))

    def resumed_epoch(self):
        """The epoch BackupAndRestore resumes at, or None when it does not resume."""
        path = os.path.join(self.directory, "training_metadata.json")
        if not (self.states() and os.path.exists(path)):
            return None
        with open(path) as f:
            return json.load(f).get("epoch")

    def read(self):
        """The state saved for the epoch BackupAndRestore resumes at (None if it does not)."""
        resumed = self.resumed_epoch()
        if resumed is None:
            return None
        files = self.states()
        if resumed not in files:
            raise ValueError(
                "Invalid value for argument `backup`: expected EarlyStopping's state saved "
                f"at the end of epoch {resumed} (BackupAndRestore resumes at epoch "
                f"{resumed}). Received: states for epochs {sorted(files)} in "
                f"{self.directory!r}. Training stopped after BackupAndRestore saved and "
                "before EarlyStopping did: list EarlyStopping(backup=...) before its "
                "BackupAndRestore in `callbacks` (then any interruption resumes exactly), "
                "or delete the kreg_early_stopping.* files to resume with a fresh "
                "EarlyStopping."
            )
        with open(files[resumed]) as f:
            state = json.load(f)
        weights_file = state.pop("weights_file", None)
        state["best_weights"] = None
        if weights_file is not None:
            with np.load(os.path.join(self.directory, weights_file)) as data:
                state["best_weights"] = [data[f"arr_{i}"] for i in range(len(data.files))]
        return state


def atomic_write(path, write):
    """Write ``path`` through a temporary file, so a crash never leaves half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
