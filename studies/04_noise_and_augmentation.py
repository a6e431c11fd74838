"""Study 4: Gaussian input noise and data augmentation — the evidence behind lesson 4.

Claim 1 (Bishop 1995): Gaussian noise N(0, σ²) added to the inputs during training
regularizes: a moderate σ raises test accuracy, a large σ destroys the signal. Test
accuracy of an MLP 100-100 on MNIST-1D (Adam 1e-3, batch 100, 150 epochs) over nine σ from
0 to 3, three seeds (initial weights and noise draws); every σ of one seed trains side by
side in one Keras model (``_train.packed``: disjoint weights, added losses, so each trains
exactly as alone). Two paired t-tests over the seeds (two-sided, 5%): the best σ against
no noise (picking the best σ from the same runs favours it, so its gain must pass the test
to count) and the best σ against the largest.

Claim 2: augmentation teaches the invariances it shows, and only those. A small CNN on the
8x8 digits (conv 32 – pool – conv 64 – dense 64, Adam 2e-3, batch 64, 150 epochs) trained
without augmentation, with translation, rotation, flip or colour alone
(``kreg.layers.RandomAffine``, ``kreg.layers.augmentation(color=0.3)``) and with
translation + rotation + colour, each tested on the clean test set and on the test set
transformed by each augmentation (fixed seed). One training seed, as in the tutorial; the
interval of each gain is a paired bootstrap over the 360 test images, so it measures the
test set's noise, not the seeds'.

The method (seeds, sizes, statistics) is the tutorial's as of commit 9d4377c, moved here
unchanged; the bootstrap over test images is new.

Run: ``python studies/04_noise_and_augmentation.py`` (full; ``--quick``, ``--smoke``).
"""

import _study  # noqa: I001  (first: puts tutorials/ on sys.path)

import _data
import _report
import _train
import keras
import matplotlib.pyplot as plt
import numpy as np

import kreg

NAME = "04_noise_and_augmentation"


def noise_sweep(args, dataset):
    """Test accuracy [seed, σ] of the MLP with GaussianNoise(σ) in front."""
    sigmas = _study.pick(
        args,
        [0.0, 0.5],
        [0.0, 0.25, 0.5, 1.0, 2.0],
        [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0],
    )
    seeds = _study.pick(args, 1, 2, 3)
    epochs = _study.pick(args, 1, 20, 150)
    print(
        f"Noise: MLP 100-100 on {dataset.name} (inputs have std {dataset.x_train.std():.2f}), "
        f"Adam 1e-3, batch 100, {epochs} epochs, σ ∈ {sigmas}, {seeds} seed(s).",
        flush=True,
    )
    accuracy = np.zeros((seeds, len(sigmas)))
    for seed in range(seeds):
        keras.utils.set_random_seed(args.seed + seed)
        towers = [
            _train.mlp_tower(dataset, front=[lambda sigma=sigma: kreg.layers.GaussianNoise(sigma)])
            for sigma in sigmas
        ]
        model = _train.packed(dataset, towers)
        _train.compile_packed(model, keras.optimizers.Adam(1e-3))
        _train.fit_packed(
            model, dataset.x_train, dataset.y_train, batch_size=100, epochs=epochs, verbose=0
        )
        accuracy[seed] = [a for a, _ in _train.packed_scores(model, dataset.x_test, dataset.y_test)]
    return sigmas, accuracy


_COUNT = {}


def _unique(prefix):
    _COUNT[prefix] = _COUNT.get(prefix, 0) + 1
    return f"{prefix}_{_COUNT[prefix]}"


def invariances():
    """name -> factory of the augmentation layer for that invariance."""
    return {
        "translation": lambda: kreg.layers.RandomAffine(translation=0.2, fill_mode="constant"),
        "rotation": lambda: kreg.layers.RandomAffine(rotation=0.06, fill_mode="constant"),
        "flip": lambda: kreg.layers.RandomAffine(flip="horizontal"),
        # Keras' RandomBrightness + RandomContrast; each pipeline is named uniquely, since
        # several sit side by side in one model.
        "colour": lambda: kreg.layers.augmentation(
            color=0.3, value_range=(0.0, 1.0), name=_unique("colour")
        ),
    }


def augmentation_grid(args, images):
    """{test set: [accuracy of each training configuration]} and the per-image hits."""
    epochs = _study.pick(args, 1, 20, 150)
    augmentations = invariances()
    print(
        f"Augmentation: CNN on {images.name} images {images.input_shape}, Adam 2e-3, batch 64, "
        f"{epochs} epochs, one training seed.",
        flush=True,
    )
    test_sets = {"clean": images.x_test}
    for name, make in augmentations.items():
        keras.utils.set_random_seed(1000 + args.seed)
        test_sets[name] = keras.ops.convert_to_numpy(make()(images.x_test, training=True))
    configs = {"none": []}
    configs.update({name: [make] for name, make in augmentations.items()})
    configs["translation+rotation+colour"] = [
        augmentations["translation"],
        augmentations["rotation"],
        augmentations["colour"],
    ]
    keras.utils.set_random_seed(args.seed)
    model = _train.packed(
        images, [_train.cnn_tower(images, front=front) for front in configs.values()]
    )
    _train.compile_packed(model, keras.optimizers.Adam(2e-3))
    _train.fit_packed(
        model, images.x_train, images.y_train, batch_size=64, epochs=epochs, verbose=0
    )
    hits = {}
    for name, x in test_sets.items():
        outputs = model.predict(x, batch_size=1000, verbose=0)
        hits[name] = np.array([np.argmax(o, -1) == images.y_test for o in outputs])
    return list(configs), hits


def main():
    args = _study.options(NAME)
    dataset = _data.from_args(args, "mnist1d")
    sigmas, accuracy = noise_sweep(args, dataset)
    seeds = len(accuracy)
    mean = accuracy.mean(0)
    std = accuracy.std(0, ddof=1) if seeds > 1 else np.zeros(len(sigmas))
    _study.table(
        args,
        "noise",
        ["σ", "test accuracy (mean)", "± std", "seeds"],
        [[s, m, d, seeds] for s, m, d in zip(sigmas, mean, std)],
        caption="Test accuracy of the MNIST-1D MLP against the input-noise σ.",
    )
    best = int(np.argmax(mean))
    gain = _report.paired_test(accuracy[:, best], accuracy[:, 0])
    loss = _report.paired_test(accuracy[:, best], accuracy[:, -1])
    helps = best != 0 and gain["significant"] and gain["diff"] > 0
    hurts = loss["significant"] and loss["diff"] > 0

    def t_text(test):
        if test["n"] < 2:
            return "paired t-test needs 2 seeds"
        return f"paired t, |t| = {abs(test['t']):.2f} vs {test['t_crit']:.2f}"

    rows = [
        [
            "moderate input noise raises test accuracy (Bishop 1995)",
            f"MLP test accuracy, best σ ({sigmas[best]:g}) − no noise",
            seeds,
            f"{gain['diff']:+.4f} ± {gain['std']:.4f}",
            t_text(gain),
            "reproduced" if helps else "inconclusive at this size",
        ],
        [
            "too much noise destroys the signal",
            f"MLP test accuracy, best σ − largest σ ({sigmas[-1]:g})",
            seeds,
            f"{loss['diff']:+.4f} ± {loss['std']:.4f}",
            t_text(loss),
            "reproduced" if hurts else "inconclusive at this size",
        ],
    ]

    images = (
        dataset
        if dataset.kind == "image"
        else _data.load("digits", seed=args.seed, smoke=args.smoke)
    )
    configs, hits = augmentation_grid(args, images)
    test_names = list(hits)
    accuracy_table = {name: hits[name].mean(-1) for name in test_names}
    _study.table(
        args,
        "augmentation",
        ["trained with"] + [f"test: {t}" for t in test_names],
        [[config] + [accuracy_table[t][k] for t in test_names] for k, config in enumerate(configs)],
        caption="Test accuracy of each training augmentation (rows) on each "
        "transformed test set (columns), one training seed.",
    )
    for k, config in enumerate(configs):
        if config not in test_names:
            continue
        # Gain on the matching transformed test set over no augmentation, and its paired
        # bootstrap interval over the test images (the same resampled images for both).
        matched = hits[config][k].astype("float64") - hits[config][0]
        low, high = _report.bootstrap(
            lambda index, gain=matched: gain[index].mean(), len(matched), seed=args.seed
        )
        rows.append(
            [
                f"augmenting with {config} teaches invariance to it",
                f"CNN accuracy on the {config}-transformed test set, {config} − none",
                1,
                f"{matched.mean():+.3f}",
                f"[{low:+.3f}, {high:+.3f}] (bootstrap over {len(matched)} test images)",
                _report.interval_verdict(low, high),
            ]
        )

    figure, axes = plt.subplots(1, 2, figsize=(13, 3.4), width_ratios=[1, 2])
    axes[0].errorbar(sigmas, mean, yerr=std, marker="o", capsize=3)
    axes[0].set(
        xlabel="input noise σ (kreg.layers.GaussianNoise)",
        ylabel="test accuracy",
        title=f"Gaussian input noise, MLP on {dataset.name} ({seeds} seeds)",
    )
    width = 0.8 / len(configs)
    for k, config in enumerate(configs):
        axes[1].bar(
            np.arange(len(test_names)) + k * width,
            [accuracy_table[t][k] for t in test_names],
            width,
            label=config,
        )
    axes[1].set_xticks(
        np.arange(len(test_names)) + 0.4 - width / 2, [f"test: {t}" for t in test_names], fontsize=7
    )
    axes[1].set(
        ylabel="test accuracy",
        ylim=(0, 1),
        title=f"Augmentation, CNN on {images.name} (1 seed): accuracy on each test set",
    )
    axes[1].legend(
        fontsize=7,
        title="trained with",
        title_fontsize=7,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
    )
    _study.figure(args, figure)
    _study.verdicts(
        args,
        rows,
        title="Study 4: noise injection and data augmentation",
        note="A flip is the wrong invariance for digits (a mirrored 2 is not a 2); "
        "the table shows what each network learned, not whether it should have.",
    )


if __name__ == "__main__":
    main()
