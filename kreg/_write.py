"""The write channel of DecoupledWeightDecay: new values for model weights, from outside ``fit``'s
own optimizer, written where each backend allows a write.

Why a channel at all: on TensorFlow under a ``tf.distribute`` strategy a weight may only be
written inside the strategy's merge call, and on JAX inside the stateless scope that the
train step traces; a Keras optimizer's ``update_step`` is called in exactly those places.
So :class:`Writer` is a tiny Keras optimizer whose "gradient" for a weight is the amount of
a transform (a decay, a soft threshold) and whose ``update_step`` computes the new value
from the weight itself there. On torch the step runs eagerly on one device: the writer
assigns directly, without an optimizer's per-call machinery.
"""

import keras
from keras import ops

from kreg import _decay
from kreg import _keras_compat as compat

__all__ = []  # private: DecoupledWeightDecay's plumbing


def _no_learning_rate():
    return 0.0


class Writer(keras.optimizers.Optimizer):
    """Writes ``transform(θ, amount, reference, before)`` into weights through Keras' update path.

    The amount travels as the weight's "gradient", so Keras calls ``update_step`` where a
    write is legal. Under a ``tf.distribute`` strategy Keras first sums the replicas'
    "gradients", so each replica passes its share of the amount (``amount/2 + amount/2``
    is exact for two replicas). Keras' ``update_step`` sees the weight (on TensorFlow, its
    per-device copy) but no index of it, so :meth:`write` applies one weight at a time
    and holds that weight's transform and extra tensors meanwhile.

    >>> import keras
    >>> from kreg import _decay
    >>> w = keras.Variable([1.0, -2.0])
    >>> Writer("write").write(_decay.decay, 0.5, [(w, 1.0, None, None)])
    >>> keras.ops.convert_to_numpy(w).tolist()
    [0.5, -1.0]
    """

    def __init__(self, name):
        # A callable learning rate creates no variable: the write count is its only state.
        super().__init__(learning_rate=_no_learning_rate, name=name)
        self.calls = 0
        self._job = None

    def update_step(self, gradient, variable, learning_rate):
        self.calls += 1
        transform, reference, before = self._job

        def write():
            self.assign(variable, transform(variable, gradient, reference, before))

        # A graph skips the write of a zero amount (l1 = 0, a micro-step). Under JAX a
        # cond cannot hold an assignment (XLA fuses the no-op write instead).
        if keras.backend.backend() == "tensorflow":
            ops.cond(gradient > 0, write, lambda: None)
        else:
            write()

    def write(self, transform, amount, rows):
        """``θ ← transform(θ, amount·m, reference, before)`` for each ``(θ, m, reference,
        before)`` of ``rows``; the weight's constraint runs after its write, as after the
        inner update."""
        if keras.backend.backend() == "torch":
            self._write_eagerly(transform, amount, rows)
            return
        for variable, multiplier, reference, before in rows:
            # Under tf.distribute each replica runs this loop in its own thread, in step
            # up to the merge call: the job is the same in all, the count only grows.
            self._job, calls = (transform, reference, before), self.calls
            self.apply([compat.scale_for_replicas(amount * multiplier)], [variable])
            if self.calls == calls:
                raise RuntimeError(
                    f"Keras did not call `update_step` of {type(self).__name__} for the "
                    f"weight {variable.path}, so DecoupledWeightDecay could not write it."
                )

    @staticmethod
    def _write_eagerly(transform, amount, rows):
        # torch steps eagerly on one device: a write is a plain assignment outside
        # autograd, without the per-call work of an optimizer's apply. The two plain
        # transforms (no anchor, no constraint) write in place in one batched call, as
        # Keras' own torch AdamW decays: a decay multiplies, a soft threshold subtracts
        # the clipped weight.
        with compat.no_gradient():
            plain = [row for row in rows if row[2] is None and row[0].constraint is None]
            if transform is _decay.decay:
                for multiplier in sorted({row[1] for row in plain}):
                    compat.multiply_in_place(
                        [v.value for v, m, _, _ in plain if m == multiplier],
                        1.0 - amount * multiplier,
                    )
            elif transform is _decay.soft_threshold:
                values = [v.value for v, _, _, _ in plain]
                clipped = [ops.clip(v.value, -amount * m, amount * m) for v, m, _, _ in plain]
                compat.subtract_in_place(values, clipped)
            else:
                plain = []
            done = {id(row[0]) for row in plain}
            for variable, multiplier, reference, before in rows:
                if id(variable) in done:
                    continue
                value = transform(variable.value, amount * multiplier, reference, before)
                variable.assign(value)
                if variable.constraint is not None:
                    variable.assign(variable.constraint(variable.value))

    # The count of writes is no state to keep: nothing saved, so this writer adds no
    # entry to weight files (files without one load as they are).
    def save_own_variables(self, store):
        pass

    def load_own_variables(self, store):
        pass
