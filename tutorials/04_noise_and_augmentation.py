"""Tutorial 4: noise injection and data augmentation.

Claim 1 (Bishop 1995): adding Gaussian noise N(0, σ²) to the inputs during training
regularizes; for squared error and small σ it is equivalent to a Tikhonov penalty on
the derivatives of the network's output with respect to its inputs. Small σ helps, large
σ destroys the signal: we plot test accuracy against σ. ``kreg.layers.GaussianNoise`` is
Keras' layer with a live σ and without Keras' σ ≤ 1 limit.

Claim 2: augmentation teaches invariances the data lacks — translation, rotation, flip
("an upside-down dog is still a dog"), colour. ``kreg.layers.RandomAffine`` draws a
translation, rotation, zoom, shear and flips per image and applies them in *one*
resampling. We train one network per invariance on the 8x8 digits and test each on test
sets transformed the same ways: a network only becomes invariant to what it was shown.
Not every invariance is right: a flipped 2 is not a 2 (and a rotated 6 becomes a 9).

Run: ``python tutorials/04_noise_and_augmentation.py --quick``
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _data  # noqa: E402
import _report  # noqa: E402
import _train  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import kreg  # noqa: E402

SLUG = "04_noise_and_augmentation"
TITLE = "4. Noise injection and data augmentation"


def part_noise(args, report, ds):
    plt = _report.plt
    sigmas = _report.pick(args, [0.0, 0.5], [0.0, 0.25, 0.5, 1.0, 2.0],
                          [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
    seeds = _report.pick(args, 1, 2, 3)
    epochs = _report.pick(args, 1, 20, 150)
    report.say(f"Part A — Gaussian input noise: MLP 100-100 on {ds.name} (inputs have std "
               f"{ds.x_train.std():.2f}), Adam 1e-3, batch 100, {epochs} epochs, σ ∈ {sigmas}, "
               f"{seeds} seed(s); all σ of one seed train side by side in one model.")
    acc = np.zeros((seeds, len(sigmas)))
    for s in range(seeds):
        keras.utils.set_random_seed(args.seed + s)
        towers = [_train.mlp_tower(ds, front=[lambda sigma=sigma: kreg.layers.GaussianNoise(sigma)])
                  for sigma in sigmas]
        model = _train.packed(ds, towers)
        _train.compile_packed(model, keras.optimizers.Adam(1e-3))
        _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=100, epochs=epochs, verbose=0)
        acc[s] = [a for a, _ in _train.packed_scores(model, ds.x_test, ds.y_test)]
    mean, std = acc.mean(0), acc.std(0, ddof=1) if seeds > 1 else np.zeros(len(sigmas))
    report.table("noise", ["σ", "test accuracy (mean)", "± std", "seeds"],
                 [[s, m, d, seeds] for s, m, d in zip(sigmas, mean, std)],
                 caption="Test accuracy against the input-noise σ.")
    fig = plt.figure(figsize=(5, 3.2))
    plt.errorbar(sigmas, mean, yerr=std, marker="o", capsize=3)
    plt.xlabel("input noise σ (GaussianNoise)")
    plt.ylabel("test accuracy")
    plt.title(f"Gaussian input noise on {ds.name}")
    report.figure(fig, "noise_sigma", "Test accuracy against the input-noise standard deviation.")
    best = int(np.argmax(mean))
    # Tests over seeds (paired by seed, two-sided 5%): the best σ against no noise, and the
    # largest σ against the best. Picking the best σ from the same runs favours it, so a
    # gain must also pass the test to count.
    gain = _report.paired_test(acc[:, best], acc[:, 0])
    loss = _report.paired_test(acc[:, best], acc[:, -1])
    helps = best != 0 and gain["significant"] and gain["diff"] > 0
    hurts = loss["significant"] and loss["diff"] > 0
    report.say(
        f"Best σ = {sigmas[best]:g}: {_report.pm(acc[:, best])} vs {_report.pm(acc[:, 0])} "
        f"without noise (best − none: {gain['text']}); the largest σ ({sigmas[-1]:g}) gives "
        f"{_report.pm(acc[:, -1])} (best − largest: {loss['text']}). "
        + ("Reproduced: moderate noise regularizes, too much destroys the signal."
           if helps and hurts else
           "Partly reproduced: too much noise destroys the signal; the gain of moderate "
           "noise is inconclusive at this size (not significant over the seeds)."
           if hurts else
           "Inconclusive at this size: neither effect is significant over the seeds."
           if seeds > 1 else
           "Inconclusive at this size: one seed, no test.")
    )
    return {"noise_best_sigma": sigmas[best], "noise_best_acc": float(mean[best]),
            "noise_none_acc": float(mean[0])}


_COUNT = {}


def _unique(prefix):
    _COUNT[prefix] = _COUNT.get(prefix, 0) + 1
    return f"{prefix}_{_COUNT[prefix]}"


def invariances(h):
    """name -> factory of the augmentation layer for that invariance (images of height h)."""
    return {
        "translation": lambda: kreg.layers.RandomAffine(translation=0.2, fill_mode="constant"),
        "rotation": lambda: kreg.layers.RandomAffine(rotation=0.06, fill_mode="constant"),
        "flip": lambda: kreg.layers.RandomAffine(flip="horizontal"),
        # Keras' RandomBrightness + RandomContrast; each call names its pipeline uniquely,
        # since several sit side by side in one model.
        "colour": lambda: kreg.layers.augmentation(color=0.3, value_range=(0.0, 1.0),
                                                   name=_unique("colour")),
    }


def part_augmentation(args, report, ds):
    plt = _report.plt
    epochs = _report.pick(args, 1, 20, 150)
    augs = invariances(ds.input_shape[0])
    report.say(f"Part B — augmentation on {ds.name} images {ds.input_shape}: a small CNN "
               f"(conv 32 – pool – conv 64 – dense 64) trained {epochs} epochs without "
               "augmentation, with each invariance alone, and with translation + rotation + "
               "colour (kreg.layers.augmentation(color=0.3): Keras' brightness and contrast "
               "layers); each is tested on the clean test set and on test sets transformed by "
               "each augmentation (fixed seed).")

    # A grid of augmented samples: one row per augmentation.
    samples = ds.x_train[:6]
    fig, axes = plt.subplots(len(augs) + 1, 6, figsize=(6, 1.1 * (len(augs) + 1)))
    rows_img = {"original": samples}
    for name, make in augs.items():
        layer = make()
        rows_img[name] = keras.ops.convert_to_numpy(layer(samples, training=True))
    for r, (name, imgs) in enumerate(rows_img.items()):
        for c in range(6):
            ax = axes[r, c]
            img = imgs[c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else np.clip(img, 0, 1), cmap="gray",
                      vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=7)
    report.figure(fig, "augmented_samples", "Training images under each augmentation "
                  "(kreg.layers.RandomAffine for the geometry, one resampling each).")

    # Test sets transformed by each augmentation, with a fixed seed.
    test_sets = {"clean": ds.x_test}
    for name, make in augs.items():
        keras.utils.set_random_seed(1000 + args.seed)
        test_sets[name] = keras.ops.convert_to_numpy(make()(ds.x_test, training=True))

    configs = {"none": []}
    configs.update({name: [make] for name, make in augs.items()})
    configs["translation+rotation+colour"] = [augs["translation"], augs["rotation"], augs["colour"]]
    keras.utils.set_random_seed(args.seed)
    towers = [_train.cnn_tower(ds, front=front) for front in configs.values()]
    model = _train.packed(ds, towers)
    _train.compile_packed(model, keras.optimizers.Adam(2e-3))
    _train.fit_packed(model, ds.x_train, ds.y_train, batch_size=64, epochs=epochs, verbose=0)
    table = {name: [a for a, _ in _train.packed_scores(model, x, ds.y_test)]
             for name, x in test_sets.items()}
    rows = [[cfg] + [table[t][k] for t in test_sets] for k, cfg in enumerate(configs)]
    report.table("augmentation", ["trained with"] + [f"test: {t}" for t in test_sets], rows,
                 caption="Test accuracy of each training augmentation (rows) on each "
                 "transformed test set (columns).")
    fig = plt.figure(figsize=(8.5, 3.4))
    names = list(test_sets)
    width = 0.8 / len(configs)
    for k, cfg in enumerate(configs):
        plt.bar(np.arange(len(names)) + k * width, [table[t][k] for t in names], width, label=cfg)
    plt.xticks(np.arange(len(names)) + 0.4 - width / 2, [f"test: {n}" for n in names], fontsize=7)
    plt.ylabel("test accuracy")
    plt.ylim(0, 1)
    plt.legend(fontsize=7, title="trained with", title_fontsize=7, loc="center left",
               bbox_to_anchor=(1.01, 0.5))
    report.figure(fig, "augmentation_accuracy", "A network becomes invariant to what it was "
                  "shown: each augmentation helps most on the matching transformed test set.")
    gains = {name: table[name][k] - table[name][0]
             for k, name in enumerate(configs) if name in augs}
    robust = [n for n, g in gains.items() if g < 0.01]
    report.say("Gain on the matching transformed test set over no augmentation: "
               + ", ".join(f"{n} {g:+.3f}" for n, g in gains.items())
               + (f" (no gain for {', '.join(robust)}: the model without augmentation was "
                  "already robust to that change)" if robust else "")
               + f". Clean test accuracy: none {table['clean'][0]:.3f}, "
               f"all three {table['clean'][-1]:.3f}. Flipping is a wrong invariance for "
               "digits (a mirrored 2 is not a 2) — it is right for dogs, not for characters.")
    return {f"aug_gain_{n}": g for n, g in gains.items()}


def run(args, report):
    ds = _data.from_args(args, "mnist1d")
    report.say(f"Data: {ds}.")
    out = {}
    out.update(part_noise(args, report, ds))
    images = ds if ds.kind == "image" else _data.load("digits", seed=args.seed, smoke=args.smoke)
    out.update(part_augmentation(args, report, images))
    return out


def main(argv=None):
    return _report.main(run, SLUG, TITLE, __doc__, argv)


if __name__ == "__main__":
    main()
