"""The checks: each is a function ``check(ctx) -> list[Finding]`` over a read-only Context.

A check reports only what it can establish from the model, the optimizer and the
arguments; when it cannot tell (a subclassed model has no graph to read, a custom
regularizer has no known strength) it says nothing, so that a clean model stays clean.
Checks decide; ``kreg/audit/_explain/`` writes up what they found, and every finding
is made by ``kreg.audit._codes.finding`` from a registered code.
"""

from kreg.audit._checks.batch_size import check_batch_size
from kreg.audit._checks.decay import check_decay
from kreg.audit._checks.layer_order import check_batchnorm
from kreg.audit._checks.noise import check_noise
from kreg.audit._checks.penalties import check_attachment, check_penalties
from kreg.audit._checks.xla import check_xla

#: In this order; a report lists findings most severe first, then in this order.
CHECKS = (
    check_attachment,
    check_penalties,
    check_decay,
    check_batchnorm,
    check_noise,
    check_xla,
    check_batch_size,
)
