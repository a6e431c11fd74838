"""The tutorials' shared helpers and a tiny --smoke run: data offline, report files, tfds path.

The full tutorials are not run here (they take minutes); `--smoke` shrinks data and
epochs to near nothing, so these tests check the plumbing: the offline data sets, the
tensorflow-datasets path (through tfds.testing.mock_data) and the report folder with its
index.
"""

import importlib.util
import os
import sys

import numpy as np
import pytest
from conftest import jax_only, tf_only

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIALS = os.path.join(ROOT, "tutorials")
sys.path.insert(0, TUTORIALS)

import _data  # noqa: E402
import _report  # noqa: E402


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"tut_{name}", os.path.join(TUTORIALS, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KREG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


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


def test_report_writes_markdown_png_and_index(tmp_path):
    report = _report.Report(str(tmp_path), "99_demo", "Demo")
    report.table("numbers", ["a", "b"], [["x", 0.5], ["y", 1e-5]], caption="cap")
    fig = _report.plt.figure()
    _report.plt.plot([0, 1])
    report.figure(fig, "line")
    report.finish(1.0)
    table = (tmp_path / "99_demo" / "numbers.md").read_text()
    assert "| a | b |" in table and "| y | 1.00e-05 |" in table
    assert (tmp_path / "99_demo" / "line.png").stat().st_size > 0
    index = (tmp_path / "index.md").read_text()
    assert "99_demo/numbers.md" in index and "99_demo/line.png" in index


def test_tour_smoke_writes_report(tmp_path, capsys):
    tour = load_script("tour.py")
    assert tour.main(["--smoke", "--only", "6", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "06_batchnorm_and_biases"
    assert (folder / "bias_only.md").exists() and (folder / "bias_over_steps.png").exists()
    index = (tmp_path / "index.md").read_text()
    for name in ("bias_only.md", "full_training.md", "bias_over_steps.png"):
        assert f"06_batchnorm_and_biases/{name}" in index
    assert "| ok |" in index
    assert "[1/1] 06_batchnorm_and_biases.py" in capsys.readouterr().out


@tf_only
def test_tutorial_with_mock_tfds_dataset(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    tutorial = load_script("06_batchnorm_and_biases.py")
    with tfds.testing.mock_data(num_examples=64):
        headline = tutorial.main(["--smoke", "--dataset", "mnist", "--out", str(tmp_path)])
    assert headline["bias_norm_constant"] > headline["bias_norm_batchnorm"]
    readme = (tmp_path / "06_batchnorm_and_biases" / "README.md").read_text()
    assert "Dataset('mnist'" in readme


def test_every_tutorial_has_the_entry_points():
    tour = load_script("tour.py")
    numbers = [n for n, _ in tour.tutorials()]
    # Tutorials 1-8, then any further ones, each number once.
    assert numbers[:8] == list(range(1, 9)) and numbers == sorted(set(numbers))
    for _, path in tour.tutorials():
        source = open(path, encoding="utf-8").read()
        for needed in ("SLUG = ", "TITLE = ", "def run(args, report)", "def main(argv=None)",
                       '__name__ == "__main__"'):
            assert needed in source, (path, needed)


def test_tutorial_9_search_live_strengths_and_transfer(tmp_path):
    pytest.importorskip("keras_tuner")
    pytest.importorskip("scipy")
    tutorial = load_script("09_more_hyperparameters.py")
    headline = tutorial.main(["--smoke", "--out", str(tmp_path)])
    folder = tmp_path / "09_more_hyperparameters"
    for name in ("search.md", "live_trials.md", "anneal.md", "transfer.md", "search.png",
                 "live_trials.png", "anneal.png", "transfer.png"):
        assert (folder / name).exists(), name
    import keras

    if keras.backend.backend() != "torch":  # torch runs the step eagerly: nothing to trace
        # keras-tuner traces a new model per trial; with live strengths only the first
        # trial traces, so a later trial's first epoch costs no more than its others.
        assert headline["compile_s_live"] < 0.5 * headline["compile_s_tuner"]
    # One seed in --smoke: no verdict can be drawn, and the tutorial must say so.
    assert headline["transfer_verdict"] == "inconclusive at this size"
    assert not list(tmp_path.glob("**/trial_*")), "keras-tuner's trials belong in a temp dir"


def test_equivalence_verdict_from_the_interval():
    # d = (0.01, 0.02, 0.03): mean 0.02, std 0.01, n = 3, t_crit 4.303 -> ±0.0248.
    test = _report.paired_test([0.11, 0.12, 0.13], [0.1, 0.1, 0.1])
    lo, hi = _report.interval(test)
    assert abs(lo - (0.02 - 4.303 * 0.01 / np.sqrt(3))) < 1e-12
    assert abs(hi - (0.02 + 4.303 * 0.01 / np.sqrt(3))) < 1e-12
    assert _report.equivalence(test, 0.05) == "Reproduced"          # [-0.005, 0.045]
    assert _report.equivalence(test, 0.03) == "Inconclusive at this size"
    far = _report.paired_test([0.5, 0.51, 0.52], [0.1, 0.1, 0.1])  # [0.385, 0.435]
    assert _report.equivalence(far, 0.03) == "Not reproduced"
    assert _report.equivalence(_report.paired_test([0.1], [0.1]), 0.5) == (
        "Inconclusive at this size")


def test_bootstrap_interval_and_its_verdict():
    assert _report.bootstrap(lambda idx: 2.0, 5) == (2.0, 2.0)
    lo, hi = _report.bootstrap(lambda idx: float(np.mean(np.arange(5.0)[idx])), 5)
    assert 0.0 <= lo < 2.0 < hi <= 4.0
    assert _report.bootstrap(lambda idx: 1.0, 2) == (float("-inf"), float("inf"))
    assert _report.interval_verdict(0.5, 3.0) == "Reproduced"
    assert _report.interval_verdict(-3.0, -0.5) == "Not reproduced"
    assert _report.interval_verdict(0.0, 3.0) == "Inconclusive at this size"


def test_tutorial_1_best_lambda_shift_on_a_known_landscape():
    tutorial = load_script("01_weight_decay_vs_l2.py")
    rng = np.random.default_rng(1)

    def grid(best_columns, noise):  # [seed, lr, λ]: a parabola around each row's best
        g = np.zeros((5, len(best_columns), 7))
        for i, c in enumerate(best_columns):
            g[:, i, :] = 0.01 * (np.arange(7) - c) ** 2
        return g + rng.normal(0, noise, g.shape)

    lams = np.logspace(-4, -1, 7)  # half-decades
    grids = {"Adam + L2": grid([5, 4, 2], 0.001), "decoupled": grid([4, 4, 4], 0.001)}
    assert abs(tutorial.mean_shift(grids["Adam + L2"], lams) - 1.5) < 0.1  # 3 columns
    assert tutorial.mean_shift(grids["decoupled"], lams) < 0.1
    point, lo, hi = tutorial.shift_difference(grids, {"Adam + L2": lams, "decoupled": lams})
    assert 1.4 < lo <= point <= hi < 1.6
    flat = {"Adam + L2": grid([3, 3, 3], 0.05), "decoupled": grid([3, 3, 3], 0.05)}
    point, lo, hi = tutorial.shift_difference(flat, {"Adam + L2": lams, "decoupled": lams})
    assert lo < 0 < hi  # noise as large as the curvature: no verdict


def test_tutorial_1_fitted_best_lambda_is_the_parabola_vertex():
    tutorial = load_script("01_weight_decay_vs_l2.py")
    lams = [1e-3, 1e-2, 1e-1, 1.0]
    # e = (log10 λ + 1.7)²: vertex at log10 λ = -1.7, between the grid's -2 and -1.
    row = (np.log10(lams) + 1.7) ** 2
    assert abs(tutorial.fitted_best(row, lams) - (-1.7)) < 1e-12
    assert tutorial.fitted_best(np.array([0.1, 0.2, 0.3, 0.4]), lams) == -3.0  # edge


def test_tutorial_1_cost_of_keeping_lambda_across_learning_rates():
    tutorial = load_script("01_weight_decay_vs_l2.py")
    # [seed, lr, λ]: row 0's mean best is column 0, row 1's is column 2.
    err = np.array([[[0.10, 0.20, 0.40], [0.50, 0.30, 0.20]],
                    [[0.12, 0.18, 0.40], [0.70, 0.30, 0.10]]])
    excess, a, b = tutorial.kept_lambda_cost(err)
    # λ of row 0 (column 0) used at row 1: 0.50 − 0.20 and 0.70 − 0.10; the other way,
    # column 2 at row 0: 0.40 − 0.10 and 0.40 − 0.12, a smaller mean.
    assert (a, b) == (0, 1)
    np.testing.assert_allclose(excess, [0.30, 0.60])
    # Every row the same: keeping λ costs only what a seed's own best gains from noise
    # (seed 1's best is column 1, 0.11, the mean's column 0 gives it 0.12).
    same = np.stack([np.array([[0.10, 0.20, 0.40], [0.12, 0.11, 0.40]])] * 3, axis=1)
    np.testing.assert_allclose(tutorial.kept_lambda_cost(same)[0], [0.0, 0.01])


def test_tutorial_1_best_lambda_path_in_words():
    tutorial = load_script("01_weight_decay_vs_l2.py")
    assert tutorial.path_words([-2.0, -2.75, -2.97]) == "falls by 0.97 decades"
    assert tutorial.path_words([-3.0, -2.5, -2.0]) == "rises by 1.00 decades"
    assert tutorial.path_words([-2.0, -3.0, -2.1]) == "moves by 1.00 decades"  # no trend
    assert tutorial.path_words([-2.0, -2.05, -2.02]) == "stays within 0.1 decades"
    # The path of the seed-mean landscape: each row's parabola vertex, low to high lr.
    lams = [1e-3, 1e-2, 1e-1, 1.0]
    rows = [(np.log10(lams) + c) ** 2 for c in (2.3, 1.6)]  # vertices at -2.3, -1.6
    err = np.stack([np.stack(rows)] * 3)  # [seed, lr, λ]
    np.testing.assert_allclose(tutorial.best_path(err, lams), [-2.3, -1.6], atol=1e-12)


def test_tutorial_1_expected_minimum_of_normals():
    tutorial = load_script("01_weight_decay_vs_l2.py")
    # Closed forms: E[min of 1] = 0, of 2 = -1/√π, of 3 = -3/(2√π); 6 from tables.
    assert abs(tutorial.expected_min_normal(1)) < 1e-9
    assert abs(tutorial.expected_min_normal(2) + 1 / np.sqrt(np.pi)) < 1e-9
    assert abs(tutorial.expected_min_normal(3) + 1.5 / np.sqrt(np.pi)) < 1e-9
    assert abs(tutorial.expected_min_normal(6) + 1.2672) < 1e-4


def test_tutorial_7_slope_against_the_rule():
    tutorial = load_script("07_scaling_lambda.py")
    assert "steeper than the rule's 1" in tutorial.slope_against_rule([1.43, 1.40, 1.47])
    assert "too small above b_ref" in tutorial.slope_against_rule([1.43, 1.40, 1.47])
    assert "shallower than the rule's 1" in tutorial.slope_against_rule([0.5, 0.55, 0.45])
    assert "consistent with the rule's 1" in tutorial.slope_against_rule([0.9, 1.1, 1.0])


@jax_only  # the slowest --smoke (about 20 s): once, on the backend the full tour uses
def test_tutorial_1_smoke_runs_every_setting_and_the_sgd_yardstick(tmp_path):
    tutorial = load_script("01_weight_decay_vs_l2.py")
    headline = tutorial.main(["--smoke", "--out", str(tmp_path)])
    folder = tmp_path / "01_weight_decay_vs_l2"
    for name in ("trajectories.md", "landscape_mlp_100100.png", "sgd_reference_mlp_100100.md",
                 "landscape_cnn_with_batch_norm.png", "sgd_reference_cnn_with_batch_norm.md"):
        assert (folder / name).exists(), name
    assert [r["name"].split(",")[0] for r in headline["landscape"]] == [
        "MLP 100-100", "CNN with batch norm"]
    # One seed in --smoke: no verdict can be drawn, and each setting's sentence says so.
    assert {r["sgd"]["premise_verdict"] for r in headline["landscape"]} == {
        "Inconclusive at this size"}
    readme = (folder / "README.md").read_text()
    for name in ("MLP 100-100", "CNN with batch norm"):
        assert f"In the {name}, whether Adam + L2 trails SGD with momentum (best error " in readme


def test_tutorial_5_smoke_tests_both_dropout_settings(tmp_path):
    tutorial = load_script("05_dropout.py")
    headline = tutorial.main(["--smoke", "--out", str(tmp_path)])
    assert headline["mc_vs_weight_scaling_verdict"] == "Inconclusive at this size"
    assert headline["hidden_only_verdict"] == "Inconclusive at this size"
    readme = (tmp_path / "05_dropout" / "README.md").read_text()
    assert "dropout on the hidden units only" in readme


def test_every_readme_figure_is_drawn_by_its_tutorial_and_shown():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    tour = load_script("tour.py")
    slugs = {os.path.basename(path)[:-3] for _, path in tour.tutorials()}
    assert set(_report.README_FIGURES) == slugs
    for slug, name in _report.README_FIGURES.items():
        assert f"docs/img/{slug}.png" in readme, slug
        source = open(os.path.join(TUTORIALS, slug + ".py"), encoding="utf-8").read()
        if slug == "01_weight_decay_vs_l2":  # named after the setting: the CNN's heat map
            tutorial = load_script(slug + ".py")
            assert name == "landscape_" + tutorial.setting_slug("CNN with batch norm, 40 ep") + ".png"
            assert '"CNN with batch norm, ' in source
        else:
            assert f'"{name[:-4]}"' in source, (slug, name)
