"""Stopping criteria of Prechelt (1998) as pure functions over recorded histories.

``values`` is the monitored (validation) error E_va(1..t) of the epochs seen so far,
``train`` the matching training error E_tr(1..t); both are lists of floats in epoch
order, t = len(values), epochs numbered from 1. Non-finite entries are allowed: a
criterion whose formula meets one does not fire.
"""

import math

CRITERIA = ("patience", "GL", "PQ", "UP")


def _finite(x):
    return x is not None and math.isfinite(x)


def best_so_far(values):
    """E_opt(t) = min_{t' <= t} E_va(t') over the finite values (None if there are none)."""
    finite = [v for v in values if _finite(v)]
    return min(finite) if finite else None


def generalization_loss(value, best):
    """GL(t) = 100·(E_va(t)/E_opt(t) − 1), in percent.

    Defined for a positive error; 0/0 gives 0 and E/0 (E > 0) gives +inf.

    Example:

    >>> from kreg.callbacks._criteria import generalization_loss
    >>> round(generalization_loss(0.55, 0.5), 6)
    10.0
    """
    if not (_finite(value) and _finite(best)):
        return math.nan
    if best < 0 or value < 0:
        raise ValueError(
            "Prechelt's generalization loss GL needs a non-negative error; received "
            f"E_va(t)={value!r}, E_opt(t)={best!r}. Monitor an error or loss that is >= 0, "
            "or use criterion='patience'."
        )
    if best == 0:
        return 0.0 if value == 0 else math.inf
    return 100.0 * (value / best - 1.0)


def training_progress(strip):
    """P_k(t) = 1000·(Σ_{strip} E_tr / (k·min_{strip} E_tr) − 1) over a strip of k epochs.

    Example:

    >>> from kreg.callbacks._criteria import training_progress
    >>> round(training_progress([1.0, 1.0, 0.5, 0.5, 0.5]), 6)
    400.0
    """
    if not strip or not all(_finite(v) for v in strip):
        return math.nan
    low = min(strip)
    if low < 0:
        raise ValueError(
            "Prechelt's training progress P_k needs a non-negative training error; "
            f"received the strip {list(strip)!r}."
        )
    mean = sum(strip) / len(strip)
    if low == 0:
        return 0.0 if mean == 0 else math.inf
    return 1000.0 * (mean / low - 1.0)


def successive_rises(values, strip_length, direction="min"):
    """How many successive strips, ending at epoch t, ended worse than the strip before.

    Counts s such that E_va(t) > E_va(t−k), E_va(t−k) > E_va(t−2k), ... (s comparisons),
    t = len(values), k = strip_length. 0 when t is not a strip end. With
    ``direction="max"`` (a metric to maximize) worse means lower.
    """
    t = len(values)
    k = strip_length
    if t == 0 or t % k:
        return 0
    count = 0
    u = t
    while u - k >= 1:
        now, before = values[u - 1], values[u - k - 1]
        worse = now > before if direction == "min" else now < before
        if not (_finite(now) and _finite(before) and worse):
            break
        count += 1
        u -= k
    return count


def prechelt_check(
    criterion, values, train=None, *, alpha=None, strips=None, strip_length=5, direction="min"
):
    """Whether Prechelt's criterion stops after the last epoch of ``values``.

    * ``"GL"``: stop when GL(t) > alpha (any epoch).
    * ``"PQ"``: at a strip end (t divisible by k) stop when GL(t)/P_k(t) > alpha;
      ``train`` holds E_tr.
    * ``"UP"``: at a strip end stop when E_va rose over ``strips`` successive strips:
      UP_1 stops at t when E_va(t) > E_va(t−k); UP_s when UP_{s−1} stopped at t−k and
      E_va(t) > E_va(t−k). ``direction="max"`` (UP only) reads "rose" as "fell", for a
      metric to maximize.

    Returns:
        ``(stop, detail)``: a bool and a one-line string with the numbers behind it.

    Example:

    >>> from kreg.callbacks._criteria import prechelt_check
    >>> prechelt_check("GL", [1.0, 0.8, 0.9], alpha=10.0)
    (True, 'GL(3) = 12.5 > alpha = 10 (E_va = 0.9, E_opt = 0.8)')
    """
    t = len(values)
    if t == 0:
        return False, ""
    current = values[-1]
    if criterion == "GL":
        best = best_so_far(values)
        gl = generalization_loss(current, best)
        if gl > alpha:
            return True, (
                f"GL({t}) = {gl:.6g} > alpha = {alpha:.6g} "
                f"(E_va = {current:.6g}, E_opt = {best:.6g})"
            )
        return False, ""
    k = strip_length
    if t % k:
        return False, ""
    if criterion == "PQ":
        best = best_so_far(values)
        gl = generalization_loss(current, best)
        pk = training_progress(list(train[t - k : t]))
        if math.isnan(gl) or math.isnan(pk) or (gl == 0 and pk == 0):
            return False, ""
        quotient = math.inf if pk == 0 else gl / pk
        if quotient > alpha:
            return True, (
                f"PQ({t}) = GL/P_{k} = {gl:.6g}/{pk:.6g} = {quotient:.6g} > alpha = {alpha:.6g}"
            )
        return False, ""
    if criterion == "UP":
        rises = successive_rises(values, k, direction)
        if rises >= strips:
            ends = ", ".join(f"{values[u - 1]:.6g}" for u in range(t - strips * k, t + 1, k))
            moved = "rose" if direction == "min" else "fell"
            return True, (
                f"UP_{strips}({t}): E_va {moved} over {strips} successive strips of {k} "
                f"epochs ({ends})"
            )
        return False, ""
    raise ValueError(f"Unknown criterion {criterion!r}")
