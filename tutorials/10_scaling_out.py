"""
Title: Scaling out: a kreg model on several devices
Author: kreg contributors
Date created: 2026/12/07
Last modified: 2026/12/07
Description: Train a kreg-regularized model under keras.distribution (JAX) or tf.distribute (TensorFlow) and check that it gives one device's weights.
Accelerator: None
"""

"""
## Introduction

kreg has no distribution engine of its own, and needs none. Its penalties are loss terms,
its strengths are ordinary non-trainable variables, `DecoupledWeightDecay` is a Keras
optimizer and its callbacks only read and assign variables. So the engines that scale
Keras out scale a kreg model too:

- **JAX: `keras.distribution`.** `DataParallel` copies the model to every device and
  splits each batch; `ModelParallel` with a `LayoutMap` also shards large kernels.
- **TensorFlow: `tf.distribute`.** Build and compile the model inside `strategy.scope()`.

This lesson trains one model on one device and on several, and compares every weight. A
CPU has one device, but both frameworks can split it into virtual ones if told before they
start: 8 for JAX and 2 logical CPUs for TensorFlow. Run on its own (or in a fresh notebook
kernel) the lesson gets them; in a process where the framework has already started (the
tour runs every lesson in one process) it uses the devices there are, possibly one.
"""

"""
## Setup
"""

import _lesson  # noqa: I001  (first: puts the repository on sys.path)

import _data
import keras
import numpy as np

import kreg

backend = keras.backend.backend()
try:  # virtual CPU devices: possible only before the framework starts its devices
    if backend == "jax":
        import jax

        jax.config.update("jax_num_cpu_devices", 8)
    elif backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        two = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, two)
except (RuntimeError, AttributeError):
    pass  # started already (e.g. in the tour), or an older JAX: use the devices there are

options = _lesson.options("10_scaling_out")
dataset = _data.from_args(options, "mnist1d")

"""
## The model

An MLP with `kreg.regularizers.L2` on every kernel, trained by `DecoupledWeightDecay`
(Adam, weight decay and proximal L1), and a `RegularizationScaler` that anneals every
strength along a cosine: the strengths change at every step, on every device. Training
goes in batch order (no shuffling) over whole batches of 32, 4 per device on 8 devices.
"""

batch_size = 32
examples = _lesson.pick(options, smoke=96, quick=1024, full=len(dataset.y_train))
examples = examples // batch_size * batch_size
x_train, y_train = dataset.x_train[:examples], dataset.y_train[:examples]
epochs = _lesson.pick(options, smoke=1, quick=2, full=3)
steps = epochs * examples // batch_size


def make_model(l2=1e-3):
    keras.utils.set_random_seed(options.seed)  # the same initial weights every time
    model = keras.Sequential(
        [
            keras.Input(dataset.input_shape),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=kreg.regularizers.L2(l2)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=kreg.regularizers.L2(l2)),
            keras.layers.Dense(dataset.num_classes, kernel_regularizer=kreg.regularizers.L2(l2)),
        ]
    )
    optimizer = kreg.optimizers.DecoupledWeightDecay(keras.optimizers.Adam(1e-2), 1e-2, l1=1e-4)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keep_base(base, step, epoch, batch_size, num_examples, epochs):
    return base  # the schedule below does the annealing


def train(model):
    anneal = keras.optimizers.schedules.CosineDecay(1.0, steps, alpha=0.1)
    scaler = kreg.callbacks.RegularizationScaler(keep_base, schedule=anneal)
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[scaler],
    )
    return [keras.ops.convert_to_numpy(weight) for weight in model.weights]


def max_difference(weights, others):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(weights, others))


one_device = train(make_model())
rows = [
    [
        "one device, L2 strength 1% larger (yardstick)",
        1,
        max_difference(one_device, train(make_model(l2=1.01e-3))),
    ]
]

"""
The yardstick: a strength that reached the devices wrong would move the weights by about
this much. Now the same model on every device there is.

## Several devices
"""

if backend == "jax":
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    rows.append(
        [
            "keras.distribution.DataParallel",
            len(devices),
            max_difference(one_device, train(make_model())),
        ]
    )
    keras.distribution.set_distribution(None)
elif backend == "tensorflow":
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(cpus)
    with strategy.scope():
        model = make_model()  # built and compiled inside the scope
    rows.append(
        [
            "tf.distribute.MirroredStrategy",
            strategy.num_replicas_in_sync,
            max_difference(one_device, train(model)),
        ]
    )
else:
    _lesson.skip(
        options,
        "the distributed run",
        f"Keras' distribution APIs serve JAX and TensorFlow; this is {backend}.",
    )
_lesson.table(
    options,
    "engines",
    ["run", "devices", "largest weight difference"],
    rows,
    caption=f"Every weight after {epochs} epoch(s) on {examples} examples, against one device.",
)

"""
The distributed run differs from one device by float32 rounding: the devices add their
partial sums in another order, and the gap grows a little with every step, as any
perturbation of training does. It stays orders of magnitude below the yardstick.

kreg's `Dropout` and `GaussianNoise` under `keras.distribution` draw the very numbers of
one device (the draw has the global batch's shape and JAX splits it); under
`MirroredStrategy` each replica draws its own for its part of the batch, as Keras' own
layers do: the same law, not the same numbers.

To shard the kernels too, give `ModelParallel` a `LayoutMap`, whose keys are regular
expressions searched in each variable's path:

```python
mesh = keras.distribution.DeviceMesh((2, 4), ["batch", "model"], devices)
layout_map = keras.distribution.LayoutMap(mesh)
layout_map["dense.*kernel"] = (None, "model")
keras.distribution.set_distribution(
    keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch"))
```

## Several hosts: whole batches only

On several hosts every process first calls
`keras.distribution.initialize(job_addresses=..., num_processes=..., process_id=...)` and
feeds a `tf.data` dataset batched at the *global* batch size, which Keras shares out
between the processes. Batch it with `drop_remainder=True`, or pad the data to whole
global batches. Keras 3.15 does not split a partial last batch evenly: it cuts it into
pieces of the per-process batch size and hands them out in turn, and each process averages
its loss as over a full share. With a last batch of 28 on two processes of 16, they get
16 and 12 examples, which count 0.875× and 1.17× what they count on one device. With half
a per-process batch or less left over, one process gets a step the others never join and
the job hangs. kreg never sees the data, so it cannot correct this.

## What the study shows

`studies/10_scaling_out.py` runs every engine in its own process (the device counts must be
fixed before each framework starts): `DataParallel` and `ModelParallel` on 8 virtual JAX
devices, two processes joined over gloo, and `MirroredStrategy` on 2 logical CPUs, each on
the whole training set. Every one equals one device to between 5e-7 and 2.2e-6, where a 1%
change of λ moves the weights by 0.55; with kreg's Dropout and GaussianNoise the JAX
engines still do, and `MirroredStrategy`, whose replicas draw their own noise, does not.
Fed a partial last batch, the two-host run moves 0.29 away, and one device weighting those
examples 0.875× and 1.17× gives the two-host weights to float precision: the whole
difference is Keras' split.
"""

_lesson.study(options, "10_scaling_out")
