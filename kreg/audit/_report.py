"""Findings and the report that holds them: plain data, a table for people, a raise for CI."""

import collections

#: Severities, most severe first.
SEVERITIES = ("error", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def check_severity(severity, argument="severity"):
    """Return ``severity`` if it is one of SEVERITIES, else raise ValueError."""
    if not isinstance(severity, str) or severity not in _RANK:
        raise ValueError(
            f"Invalid value for argument `{argument}`: expected one of "
            f"{', '.join(repr(s) for s in SEVERITIES)}. Received: {argument}={severity!r}"
        )
    return severity


class Finding(
    collections.namedtuple("Finding", ["severity", "code", "path", "what", "why", "fix"])
):
    """One regularization mistake: how bad, which one, where, what, why, and the fix as code.

    Args:
        severity: "error" (the set-up is broken), "warning" (it trains, but worse than
            it should) or "info" (worth knowing; nothing to change necessarily).
        code: a stable short name, e.g. "l2-with-adaptive-optimizer".
        path: the layer path ("block/dense"), the variable path ("dense/kernel") or
            "optimizer".
        what: what is wrong, with the numbers.
        why: why it matters, in one sentence.
        fix: the fix, as code.
    """

    __slots__ = ()

    def at_least(self, severity):
        """True when this finding is as severe as ``severity`` or more."""
        return _RANK[self.severity] <= _RANK[check_severity(severity)]


class AuditError(ValueError):
    """Raised by :meth:`Report.raise_for`; ``.findings`` holds the findings that caused it."""

    def __init__(self, message, findings):
        super().__init__(message)
        self.findings = list(findings)


def _sort_key(finding):
    return _RANK[finding.severity]


class Report:
    """The findings of :func:`kreg.audit`, most severe first.

    ``findings`` is a list of :class:`Finding`; ``print(report)`` shows a table and, once
    per kind of finding, why it matters and how to fix it; :meth:`raise_for` fails a test
    or a CI job.

    Args:
        findings: an iterable of :class:`Finding`.
        subject: what was audited, for the title (e.g. "Sequential 'mlp' with Adam").

    Example:

    >>> import keras, kreg
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d"),
    ...                           keras.layers.Dropout(0.5, name="drop"),
    ...                           keras.layers.BatchNormalization(name="bn")], name="net")
    >>> report = kreg.audit(model, optimizer=keras.optimizers.SGD())
    >>> report
    <kreg.audit.Report of Sequential 'net' with SGD: 0 errors, 1 warning, 0 info>
    >>> [f.code for f in report.filter("warning")]
    ['dropout-before-batchnorm']
    >>> report.raise_for("warning")
    Traceback (most recent call last):
    ...
    kreg.audit._report.AuditError: kreg.audit found 1 finding(s) at severity 'warning' ...
    """

    def __init__(self, findings, subject="model"):
        self.findings = sorted(findings, key=_sort_key)
        self.subject = subject

    def filter(self, severity=None, code=None):
        """The findings at least as severe as ``severity`` (and with ``code``, if given)."""
        found = self.findings
        if severity is not None:
            found = [f for f in found if f.at_least(severity)]
        if code is not None:
            found = [f for f in found if f.code == code]
        return found

    @property
    def errors(self):
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self):
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def infos(self):
        return [f for f in self.findings if f.severity == "info"]

    def counts(self):
        """A dict from severity to the number of findings with it."""
        return {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}

    def raise_for(self, severity="error"):
        """Raise :class:`AuditError` if any finding is at least as severe as ``severity``.

        Args:
            severity: "error" (default), "warning" or "info".
        """
        found = self.filter(check_severity(severity))
        if found:
            raise AuditError(
                f"kreg.audit found {len(found)} finding(s) at severity {severity!r} or "
                f"worse in {self.subject}:\n{Report(found, self.subject)}",
                found,
            )

    def _summary(self):
        counts = self.counts()
        return ", ".join(
            f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}" for s in SEVERITIES
        )

    def __repr__(self):
        return f"<kreg.audit.Report of {self.subject}: {self._summary()}>"

    def __str__(self):
        lines = [f"kreg.audit of {self.subject}: {self._summary()}"]
        if not self.findings:
            lines.append("No regularization mistakes found.")
            return "\n".join(lines)
        header = ("SEVERITY", "CODE", "PATH", "WHAT")
        rows = [(f.severity, f.code, f.path, f.what) for f in self.findings]
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
        lines.append("")
        for row in [header] + rows:
            lines.append(
                "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
            )
        # Why and fix once per (code, why, fix), with the paths it concerns.
        groups = {}
        for f in self.findings:
            groups.setdefault((f.code, f.why, f.fix), []).append(f.path)
        for (code, why, fix), paths in groups.items():
            shown = ", ".join(paths[:6]) + (f" (+{len(paths) - 6} more)" if len(paths) > 6 else "")
            lines.append("")
            lines.append(f"{code}: {shown}")
            lines.append(f"  why: {why}")
            fix_lines = fix.splitlines() or [""]
            lines.append(f"  fix: {fix_lines[0]}")
            lines.extend(f"       {line}" for line in fix_lines[1:])
        return "\n".join(lines)
