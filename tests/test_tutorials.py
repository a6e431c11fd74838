"""Lessons, studies and their helpers: every lesson and study runs (--smoke), every lesson is
a keras.io code example that converts to a notebook, one notebook executes.

The full runs are not made here (minutes to an hour); `--smoke` shrinks data and epochs to
near nothing, so these tests check the plumbing: the offline data sets, the
tensorflow-datasets path (through tfds.testing.mock_data), the report folder and its
index, the lessons' format, the studies' verdict tables, the notebook conversion.
"""

import glob
import json
import os
import runpy
import subprocess
import sys

import numpy as np
import pytest
from conftest import BACKEND, tf_only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = os.path.join(ROOT, "tutorials")
STUDIES = os.path.join(ROOT, "studies")
for _path in (TUTORIALS, STUDIES):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import _data  # noqa: E402
import _lesson  # noqa: E402
import _report  # noqa: E402
import _study  # noqa: E402
import notebook  # noqa: E402

LESSONS = sorted(glob.glob(os.path.join(TUTORIALS, "[0-9][0-9]_*.py")))
STUDY_SCRIPTS = sorted(glob.glob(os.path.join(STUDIES, "[0-9][0-9]_*.py")))
VERDICTS = {"reproduced", "not reproduced", "inconclusive at this size"}


def name_of(path):
    return os.path.basename(path)[:-3]


def load_module(path):
    """Import a study (or any script with a __main__ guard) as a module, without running it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{name_of(path)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(path, *flags):
    """Run a lesson or a study in this process with ``flags`` as its command line."""
    argv = sys.argv
    sys.argv = [path, *flags]
    try:
        return runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = argv
        _report.plt.close("all")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KREG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------ data and statistics


def test_mnist1d_is_generated_offline_and_cached(cache):
    ds = _data.load("mnist1d", smoke=True)
    assert ds.kind == "sequence" and ds.input_shape == (40,) and ds.num_classes == 10
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert len(ds.y_train) == 96 and len(ds.y_val) == 48 and len(ds.y_test) == 64
    assert (cache / "mnist1d_seed42.npz").exists()
    full = _data.load("mnist1d")  # from the cache now: the paper's 4000 / 1000 split
    assert len(full.y_train) + len(full.y_val) == 4000 and len(full.y_test) == 1000
    assert not set(map(bytes, full.x_train[:50])) & set(map(bytes, full.x_val))


def test_mnist1d_fresh_test_split(cache):
    paper = _data.load("mnist1d")
    fresh = _data.load("mnist1d", test_size=200)
    assert fresh.x_test.shape == (200, 40) and fresh.x_test.dtype == np.float32
    assert np.bincount(fresh.y_test).tolist() == [20] * 10  # the generator's balanced classes
    np.testing.assert_array_equal(fresh.x_train, paper.x_train)  # only the test split changes
    assert not set(map(bytes, fresh.x_test)) & set(map(bytes, paper.x_test))
    assert (cache / "mnist1d_seed43_n200_split0.0.npz").exists()
    with pytest.raises(ValueError, match="test_size"):
        _data.load("digits", test_size=200)
    for bad in (205, 0, -10, 20.5):
        with pytest.raises(ValueError, match="multiple of 10.*received"):
            _data.load("mnist1d", test_size=bad)


def test_digits_are_images_in_unit_range():
    ds = _data.load("digits")
    assert ds.kind == "image" and ds.input_shape == (8, 8, 1)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 1797
    assert sorted(np.unique(ds.y_test)) == list(range(10))


@tf_only
def test_tfds_path_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=40):
        ds = _data.load("mnist", smoke=True)
    assert ds.kind == "image" and ds.input_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() <= ds.x_train.max() <= 1.0
    assert len(ds.y_train) + len(ds.y_val) == 40


def test_equivalence_verdict_from_the_interval():
    # d = (0.01, 0.02, 0.03): mean 0.02, std 0.01, n = 3, t_crit 4.303 -> ±0.0248.
    test = _report.paired_test([0.11, 0.12, 0.13], [0.1, 0.1, 0.1])
    lo, hi = _report.interval(test)
    assert abs(lo - (0.02 - 4.303 * 0.01 / np.sqrt(3))) < 1e-12
    assert abs(hi - (0.02 + 4.303 * 0.01 / np.sqrt(3))) < 1e-12
    assert _report.equivalence(test, 0.05) == "Reproduced"  # [-0.005, 0.045]
    assert _report.equivalence(test, 0.03) == "Inconclusive at this size"
    far = _report.paired_test([0.5, 0.51, 0.52], [0.1, 0.1, 0.1])  # [0.385, 0.435]
    assert _report.equivalence(far, 0.03) == "Not reproduced"
    assert _report.equivalence(_report.paired_test([0.1], [0.1]), 0.5) == (
        "Inconclusive at this size"
    )


def test_bootstrap_interval_and_its_verdict():
    assert _report.bootstrap(lambda idx: 2.0, 5) == (2.0, 2.0)
    lo, hi = _report.bootstrap(lambda idx: float(np.mean(np.arange(5.0)[idx])), 5)
    assert 0.0 <= lo < 2.0 < hi <= 4.0
    assert _report.bootstrap(lambda idx: 1.0, 2) == (float("-inf"), float("inf"))
    assert _report.interval_verdict(0.5, 3.0) == "Reproduced"
    assert _report.interval_verdict(-3.0, -0.5) == "Not reproduced"
    assert _report.interval_verdict(0.0, 3.0) == "Inconclusive at this size"


# ------------------------------------------------------------------ the helpers' API


def test_lesson_options_flags_environment_and_report_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KREG_LESSON_MODE", raising=False)
    monkeypatch.delenv("KREG_LESSON_OUT", raising=False)
    options = _lesson.options("03_early_stopping", argv=["--smoke", "--out", str(tmp_path)])
    assert (options.mode, options.smoke, options.quick, options.full) == (
        "smoke",
        True,
        False,
        False,
    )
    assert options.out == str(tmp_path / "03_early_stopping") and options.seed == 0
    assert options.dataset == "mnist1d"
    assert _lesson.pick(options, smoke=1, quick=2, full=3) == 1
    # No mode flag (a notebook): the environment decides, "quick" by default.
    assert _lesson.options("03_early_stopping", argv=["--out", str(tmp_path)]).mode == "quick"
    monkeypatch.setenv("KREG_LESSON_MODE", "full")
    monkeypatch.setenv("KREG_LESSON_OUT", str(tmp_path / "env"))
    options = _lesson.options("06_batchnorm_and_biases", dataset="digits", argv=[])
    assert options.mode == "full" and options.dataset == "digits"
    assert options.out == str(tmp_path / "env" / "06_batchnorm_and_biases")
    assert _lesson.options("06_batchnorm_and_biases", argv=["--dataset", "mnist"]).dataset == (
        "mnist"
    )
    monkeypatch.setenv("KREG_LESSON_MODE", "fast")
    with pytest.raises(ValueError, match="KREG_LESSON_MODE.*Received: 'fast'"):
        _lesson.options("03_early_stopping", argv=[])


def test_lesson_tables_figures_and_the_index(tmp_path, capsys):
    options = _lesson.options("03_early_stopping", argv=["--smoke", "--out", str(tmp_path)])
    text = _lesson.table(options, "numbers", ["a", "b"], [["x|y", 0.5], ["z", 1e-5]])
    assert "| x\\|y | 0.5 |" in text and "| z | 1.00e-05 |" in text  # a pipe is escaped
    assert text in capsys.readouterr().out
    figure = _report.plt.figure()
    _report.plt.plot([0, 1])
    assert os.path.getsize(_lesson.figure(options, figure, "line")) > 0
    _lesson.skip(options, "part B", "not for this data")
    folder = tmp_path / "03_early_stopping"
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# Early stopping") and "| z | 1.00e-05 |" in readme
    assert "![line](line.png)" in readme and "**Skipped: part B.**" in readme
    index = (tmp_path / "index.md").read_text()
    assert "03_early_stopping/numbers.md" in index and "03_early_stopping/line.png" in index
    # A new run starts a clean folder.
    _lesson.options("03_early_stopping", argv=["--smoke", "--out", str(tmp_path)])
    assert not (folder / "numbers.md").exists() and _lesson.skipped(options) == []


def test_lesson_shows_its_study(tmp_path, monkeypatch, capsys):
    results, images = tmp_path / "results", tmp_path / "img"
    results.mkdir()
    images.mkdir()
    (results / "99_demo.md").write_text("### Study 99\n\n| claim | verdict |\n")
    (results / "99_demo.tensorflow.md").write_text("### Study 99 (tensorflow)\n")
    figure = _report.plt.figure()
    figure.savefig(images / "99_demo.png")
    monkeypatch.setattr(_lesson, "RESULTS", str(results))
    monkeypatch.setattr(_lesson, "IMAGES", str(images))
    options = _lesson.options("03_early_stopping", argv=["--smoke", "--out", str(tmp_path)])
    text = _lesson.study(options, "99_demo")
    assert "### Study 99\n" in text and "### Study 99 (tensorflow)" in text
    assert (tmp_path / "03_early_stopping" / "study_99_demo.png").exists()
    assert "99_demo.png" in capsys.readouterr().out
    assert "No committed results" in _lesson.study(options, "98_missing")


def test_study_verdicts_write_results_only_on_a_full_run(tmp_path, monkeypatch):
    monkeypatch.setattr(_study, "RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(_study, "IMAGES", str(tmp_path))
    row = ["a claim", "a measure", 3, 0.5, "paired t-test", "Reproduced"]
    quick = _study.options("99_demo", ["--quick", "--out", str(tmp_path / "out")])
    text = _study.verdicts(quick, [row])
    assert "| a claim | a measure | 3 | 0.5 | paired t-test | reproduced |" in text
    assert (tmp_path / "out" / "99_demo" / "verdicts.md").read_text() == text
    assert not (tmp_path / "results").exists()
    full = _study.options("99_demo", ["--out", str(tmp_path / "out")])
    _study.verdicts(full, [row], variant="tensorflow")
    assert (tmp_path / "results" / "99_demo.tensorflow.md").exists()
    _study.figure(full, _report.plt.figure())
    assert (tmp_path / "99_demo.png").exists()  # docs/img/<study>.png on a full run
    with pytest.raises(ValueError, match="6 cells"):
        _study.verdicts(quick, [row[:5]])


# ------------------------------------------------------------------ lessons


def code_lines(path):
    """The lesson's code lines (no prose blocks, no blank lines), in order."""
    return [
        line
        for kind, text in notebook.cells(path)
        if kind == "code"
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    ]


@pytest.mark.parametrize("path", LESSONS, ids=name_of)
def test_lesson_is_a_keras_io_code_example(path):
    source = open(path, encoding="utf-8").read()
    header = notebook.parse_header(source.split('"""')[1])
    for field in ("Title", "Author", "Date created", "Last modified", "Description"):
        assert header.get(field), (path, field)
    cells = notebook.cells(path)
    assert sum(kind == "markdown" for kind, _ in cells) >= 4, "prose between the code"
    lines = source.count("\n")
    assert lines <= 330, f"{lines} lines: a lesson is about 150-300 lines"
    code = code_lines(path)
    assert any("kreg." in line for line in code[:40]), "the kreg call taught in the first screen"
    assert f'_lesson.options("{name_of(path)}"' in source
    assert "report.say(" not in source, "prose is written, not assembled at run time"
    study = name_of(path)
    assert f'_lesson.study(options, "{study}")' in source
    assert os.path.exists(os.path.join(STUDIES, study + ".py")), "its study"


# The lessons run on TensorFlow (the tour's backend) and torch; on JAX, whose compilations
# make each smoke run several times longer, the two whose text is about JAX (live strengths
# tracing once, keras.distribution), so that CI stays well under its time.
JAX_LESSONS = ("09_more_hyperparameters", "10_scaling_out")


@pytest.mark.parametrize("path", LESSONS, ids=name_of)
def test_lesson_smoke(path, tmp_path):
    if BACKEND == "jax" and name_of(path) not in JAX_LESSONS:
        pytest.skip("run on TensorFlow and torch (JAX_LESSONS)")
    if name_of(path) == "10_scaling_out" and BACKEND == "tensorflow":
        # A second tf.distribute.MirroredStrategy over the devices of one that already ran
        # collectives in this process reuses its collective keys and fails ("Shape mismatch
        # in the collective instance"), Keras' own AdamW included; the suite's own strategy
        # (conftest) has run by now, so the lesson gets a process of its own, as a reader's.
        subprocess.run(
            [sys.executable, path, "--smoke", "--out", str(tmp_path)],
            check=True,
            env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        )
    else:
        run_script(path, "--smoke", "--out", str(tmp_path))
    folder = tmp_path / name_of(path)
    assert (folder / "README.md").exists()
    assert (folder / f"study_{name_of(path)}.md").exists(), "the study's verdict table shown"
    own = [
        p for p in folder.glob("*.md") if p.name != "README.md" and not p.name.startswith("study_")
    ]
    assert own or list(folder.glob("[!s]*.png")), "a table or a figure of its own"
    assert name_of(path) in (tmp_path / "index.md").read_text()


def test_tour_smoke_writes_report(tmp_path, capsys):
    tour = load_module(os.path.join(TUTORIALS, "tour.py"))
    assert [n for n, _ in tour.lessons()] == list(range(1, len(LESSONS) + 1))
    assert tour.main(["--smoke", "--only", "3", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "03_early_stopping"
    assert (folder / "criteria.md").exists() and (folder / "learning_curves.png").exists()
    index = (tmp_path / "index.md").read_text()
    for name in ("criteria.md", "criteria_val_error.md", "learning_curves.png"):
        assert f"03_early_stopping/{name}" in index
    assert "| ok |" in index and "s wall" in index and "s CPU" in index
    assert "[1/1] 03_early_stopping.py" in capsys.readouterr().out
    assert "KREG_LESSON_MODE" not in os.environ  # the tour restores the environment


@tf_only
def test_lesson_with_mock_tfds_dataset(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=64):
        run_script(
            os.path.join(TUTORIALS, "03_early_stopping.py"),
            "--smoke",
            "--dataset",
            "mnist",
            "--out",
            str(tmp_path),
        )
    assert (tmp_path / "03_early_stopping" / "criteria.md").exists()


# ------------------------------------------------------------------ notebooks


@pytest.mark.parametrize("path", LESSONS, ids=name_of)
def test_lesson_converts_to_a_notebook(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    book = notebook.to_notebook(path)
    nbformat.validate(nbformat.from_dict(json.loads(json.dumps(book))))
    cells = book["cells"]
    title = notebook.parse_header(open(path, encoding="utf-8").read().split('"""')[1])["Title"]
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0] == f"# {title}\n"
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    compile(code, path, "exec")  # the code cells together are the lesson's code
    assert '"""' not in code.split("\n", 1)[0]
    markdown = notebook.to_markdown(path)
    assert markdown.startswith(f"# {title}\n") and "```python\n" in markdown
    target = notebook.write_notebook(path, str(tmp_path))
    assert nbformat.read(target, as_version=4).cells[0].cell_type == "markdown"


def test_notebook_conversion_keeps_strings_inside_code(tmp_path):
    lesson = tmp_path / "99_demo.py"
    lesson.write_text(
        '"""\nTitle: Demo\nAuthor: me\nDate created: 2026/12/07\n'
        'Last modified: 2026/12/07\nDescription: A demo.\n"""\n\n'
        '"""\n## Part\n\nProse.\n"""\n\nx = 1\n\n\ndef f():\n'
        '    """A docstring stays code."""\n    return """\n"""\n\n'
        '"""\nMore prose.\n"""\nprint(f())\n'
    )
    assert notebook.cells(str(lesson)) == [
        (
            "header",
            {
                "Title": "Demo",
                "Author": "me",
                "Date created": "2026/12/07",
                "Last modified": "2026/12/07",
                "Description": "A demo.",
            },
        ),
        ("markdown", "## Part\n\nProse."),
        ("code", 'x = 1\n\n\ndef f():\n    """A docstring stays code."""\n    return """\n"""'),
        ("markdown", "More prose."),
        ("code", "print(f())"),
    ]
    assert notebook.main([str(lesson), "--out", str(tmp_path / "nb")]) == 0
    assert (tmp_path / "nb" / "99_demo.ipynb").exists()


@tf_only  # a kernel of its own on the default backend: the conversion, not the backend
def test_one_lesson_executes_as_a_notebook(tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    target = notebook.write_notebook(os.path.join(TUTORIALS, "03_early_stopping.py"), str(tmp_path))
    monkeypatch.setenv("KREG_LESSON_MODE", "smoke")
    monkeypatch.setenv("KREG_LESSON_OUT", str(tmp_path / "report"))
    book = notebook.execute(target, mode="smoke", timeout=300, out=str(tmp_path / "report"))
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "figures shown inline"
    assert any("text/markdown" in o.get("data", {}) for o in outputs), "tables as markdown"
    assert (tmp_path / "report" / "03_early_stopping" / "criteria.md").exists()


# ------------------------------------------------------------------ studies


def study_smoke(path, tmp_path):
    run_script(path, "--smoke", "--out", str(tmp_path))
    text = (tmp_path / name_of(path) / "verdicts.md").read_text()
    header, rule, *rows = [line for line in text.splitlines() if line.startswith("|")]
    assert header == "| " + " | ".join(_study.HEADERS) + " |"
    assert rows and all(row.rsplit("|", 2)[1].strip() in VERDICTS for row in rows), rows
    return text


# The studies' smoke runs test their plumbing once, in the shortest leg of CI: torch, whose
# eager steps need no compilation (their committed full runs are JAX's; study 10 starts its
# own processes for every engine whatever the backend).
study_leg = pytest.mark.skipif(BACKEND != "torch", reason="a study's smoke run runs once (torch)")


@study_leg
@pytest.mark.parametrize("path", [p for p in STUDY_SCRIPTS if "/01_" not in p], ids=name_of)
def test_study_smoke(path, tmp_path, monkeypatch):
    # A smoke run writes nothing that is committed.
    monkeypatch.setattr(_study, "RESULTS", str(tmp_path / "results"))
    monkeypatch.setattr(_study, "IMAGES", str(tmp_path / "img"))
    study_smoke(path, tmp_path)
    assert not (tmp_path / "results").exists() and not (tmp_path / "img").exists()


@study_leg
def test_study_1_smoke_runs_every_setting_and_the_sgd_yardstick(tmp_path):
    text = study_smoke(os.path.join(STUDIES, "01_weight_decay_vs_l2.py"), tmp_path)
    for setting in ("MLP 100-100", "CNN with batch norm"):
        for claim in (
            "generalizes worse than SGD with momentum",
            "best test error is lower",
            "best λ moves less",
        ):
            assert f"| {setting}: " in text and claim in text
    folder = tmp_path / "01_weight_decay_vs_l2"
    for name in (
        "trajectories.md",
        "landscape_mlp_100100.png",
        "sgd_reference_mlp_100100.md",
        "landscape_cnn_with_batch_norm.png",
        "sgd_reference_cnn_with_batch_norm.md",
    ):
        assert (folder / name).exists(), name


def test_every_study_has_its_results_and_every_lesson_its_study():
    for path in STUDY_SCRIPTS:  # a study's last full run is committed
        text = open(
            os.path.join(STUDIES, "results", name_of(path) + ".md"), encoding="utf-8"
        ).read()
        assert "| " + " | ".join(_study.HEADERS) + " |" in text, name_of(path)
    for path in LESSONS:  # each lesson shows its study's table and figure
        name = name_of(path)
        assert os.path.exists(os.path.join(STUDIES, name + ".py")), name
        assert os.path.exists(os.path.join(STUDIES, "results", name + ".md")), name
        assert os.path.exists(os.path.join(ROOT, "docs", "img", name + ".png")), name


@study_leg
def test_run_all_smoke(tmp_path, capsys):
    run_all = load_module(os.path.join(STUDIES, "run_all.py"))
    numbers = [n for n, _ in run_all.studies()]
    assert numbers == sorted(set(numbers)) and len(numbers) == len(STUDY_SCRIPTS)
    assert run_all.main(["--smoke", "--only", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "# Verdicts" in out and "| 03_early_stopping | ok |" in out
    assert "| " + " | ".join(_study.HEADERS) + " |" in out


# ------------------------------------------------------------------ study 1's statistics


@pytest.fixture(scope="module")
def study_1():
    return load_module(os.path.join(STUDIES, "01_weight_decay_vs_l2.py"))


def test_study_1_best_lambda_shift_on_a_known_landscape(study_1):
    rng = np.random.default_rng(1)

    def grid(best_columns, noise):  # [seed, lr, λ]: a parabola around each row's best
        g = np.zeros((5, len(best_columns), 7))
        for i, c in enumerate(best_columns):
            g[:, i, :] = 0.01 * (np.arange(7) - c) ** 2
        return g + rng.normal(0, noise, g.shape)

    lams = np.logspace(-4, -1, 7)  # half-decades
    grids = {"Adam + L2": grid([5, 4, 2], 0.001), "decoupled": grid([4, 4, 4], 0.001)}
    assert abs(study_1.mean_shift(grids["Adam + L2"], lams) - 1.5) < 0.1  # 3 columns
    assert study_1.mean_shift(grids["decoupled"], lams) < 0.1
    point, lo, hi = study_1.shift_difference(grids, {"Adam + L2": lams, "decoupled": lams})
    assert 1.4 < lo <= point <= hi < 1.6
    flat = {"Adam + L2": grid([3, 3, 3], 0.05), "decoupled": grid([3, 3, 3], 0.05)}
    point, lo, hi = study_1.shift_difference(flat, {"Adam + L2": lams, "decoupled": lams})
    assert lo < 0 < hi  # noise as large as the curvature: no verdict


def test_study_1_fitted_best_lambda_is_the_parabola_vertex(study_1):
    lams = [1e-3, 1e-2, 1e-1, 1.0]
    # e = (log10 λ + 1.7)²: vertex at log10 λ = -1.7, between the grid's -2 and -1.
    row = (np.log10(lams) + 1.7) ** 2
    assert abs(study_1.fitted_best(row, lams) - (-1.7)) < 1e-12
    assert study_1.fitted_best(np.array([0.1, 0.2, 0.3, 0.4]), lams) == -3.0  # edge


def test_study_1_cost_of_keeping_lambda_across_learning_rates(study_1):
    # [seed, lr, λ]: row 0's mean best is column 0, row 1's is column 2.
    err = np.array(
        [[[0.10, 0.20, 0.40], [0.50, 0.30, 0.20]], [[0.12, 0.18, 0.40], [0.70, 0.30, 0.10]]]
    )
    excess, a, b = study_1.kept_lambda_cost(err)
    # λ of row 0 (column 0) used at row 1: 0.50 − 0.20 and 0.70 − 0.10; the other way,
    # column 2 at row 0: 0.40 − 0.10 and 0.40 − 0.12, a smaller mean.
    assert (a, b) == (0, 1)
    np.testing.assert_allclose(excess, [0.30, 0.60])
    # Every row the same: keeping λ costs only what a seed's own best gains from noise
    # (seed 1's best is column 1, 0.11, the mean's column 0 gives it 0.12).
    same = np.stack([np.array([[0.10, 0.20, 0.40], [0.12, 0.11, 0.40]])] * 3, axis=1)
    np.testing.assert_allclose(study_1.kept_lambda_cost(same)[0], [0.0, 0.01])


def test_study_1_best_lambda_path_in_words(study_1):
    assert study_1.path_words([-2.0, -2.75, -2.97]) == "falls by 0.97 decades"
    assert study_1.path_words([-3.0, -2.5, -2.0]) == "rises by 1.00 decades"
    assert study_1.path_words([-2.0, -3.0, -2.1]) == "moves by 1.00 decades"  # no trend
    assert study_1.path_words([-2.0, -2.05, -2.02]) == "stays within 0.1 decades"
    # The path of the seed-mean landscape: each row's parabola vertex, low to high lr.
    lams = [1e-3, 1e-2, 1e-1, 1.0]
    rows = [(np.log10(lams) + c) ** 2 for c in (2.3, 1.6)]  # vertices at -2.3, -1.6
    err = np.stack([np.stack(rows)] * 3)  # [seed, lr, λ]
    np.testing.assert_allclose(study_1.best_path(err, lams), [-2.3, -1.6], atol=1e-12)


def test_study_1_expected_minimum_of_normals(study_1):
    # Closed forms: E[min of 1] = 0, of 2 = -1/√π, of 3 = -3/(2√π); 6 from tables.
    assert abs(study_1.expected_min_normal(1)) < 1e-9
    assert abs(study_1.expected_min_normal(2) + 1 / np.sqrt(np.pi)) < 1e-9
    assert abs(study_1.expected_min_normal(3) + 1.5 / np.sqrt(np.pi)) < 1e-9
    assert abs(study_1.expected_min_normal(6) + 1.2672) < 1e-4


def test_study_1_verdict_rows_from_a_run(study_1):
    test = _report.paired_test([0.32, 0.33, 0.31], [0.30, 0.31, 0.30])
    setting = {
        "name": "MLP 100-100, 60 epochs",
        "seeds": 3,
        "error_test": test,
        "best_error": {"Adam + L2": 0.32, "decoupled": 0.303},
        "error_verdict": "Reproduced",
        "shift_interval": (0.1, -0.2, 0.3),
        "shift_decades": {"Adam + L2": 0.7, "decoupled": 0.6},
        "shift_verdict": "Inconclusive at this size",
        "sgd": {"best_error": 0.27, "premise_test": test, "premise_verdict": "Reproduced"},
    }
    rows = study_1.verdict_rows(
        {
            "sgd_equal": True,
            "adam_apart": True,
            "steps": 200,
            "step32": 1e-7,
            "traj64": 1e-16,
            "adam_first": 5e-3,
            "landscape": [setting],
        }
    )
    assert [r[-1] for r in rows] == [
        "reproduced",
        "reproduced",
        "Reproduced",
        "Reproduced",
        "Inconclusive at this size",
    ]
    assert rows[4][4] == "[-0.20, +0.30], paired bootstrap 95%"


# ------------------------------------------------------------------ per-study helpers


def test_study_7_slope_against_the_rule():
    study = load_module(os.path.join(STUDIES, "07_scaling_lambda.py"))
    assert "steeper than the rule's 1" in study.slope_against_rule([1.43, 1.40, 1.47])
    assert "shallower than the rule's 1" in study.slope_against_rule([0.5, 0.55, 0.45])
    assert "consistent with the rule's 1" in study.slope_against_rule([0.9, 1.1, 1.0])
