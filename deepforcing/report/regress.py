"""Regression check: compare a run's numbers with committed reference numbers under declared tolerances.

A baseline file (``reports/baselines/<name>.json``) holds, per method, the config hash, the sample counts and
every result value of a blessed run, plus the tolerances and why they were chosen. A value passes when

    |current - baseline| <= abs + rel * |baseline|

with ``abs``/``rel`` from the first matching rule of ``tolerances.rules`` (``fnmatch`` patterns on the result
key), else ``tolerances.default``; a metric entry may carry its own ``tol``. Anything else that changed — a
method's config hash, the suite protocol, the number of videos, a metric that disappeared or became undefined —
is a regression too: the gate is meant to catch *any* silent change of generation or scoring, in either
direction. Timings are never compared (they describe the machine).

**Gates.** ``tolerance`` (the default) is the rule above. ``ci-overlap`` (``regress --gate ci-overlap``, or
``"gate": "ci-overlap"`` in the baseline's ``tolerances``) also passes a value outside its tolerance when its 95 %
confidence interval over prompts overlaps the baseline's (:func:`deepforcing.stats.ci_overlap`, closed
intervals): a change the prompt-to-prompt spread cannot tell from noise. The tolerance stays a floor (a value
within it always passes), and where either side has no interval (one prompt, an undefined value, a baseline
blessed before intervals were kept) the tolerance alone decides. Every finding records which rule decided.

``--update`` writes the run's numbers, with their intervals, into the baseline (keeping its tolerances and
gate) and shows what changed.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from deepforcing.errors import UserError
from deepforcing.report import table as T
from deepforcing.report.catalog import describe
from deepforcing.report.runs import Run
from deepforcing.stats import ci_overlap

log = logging.getLogger(__name__)

BASELINE_SCHEMA_VERSION = 1
BASELINE_KIND = "deepforcing-eval regression baseline"

#: Suite fields that define what the numbers mean (methods are compared one by one, overrides are flags).
PROTOCOL_FIELDS = (
    "name",
    "version",
    "model",
    "prompts",
    "seeds",
    "num_latent_frames",
    "metrics",
    "drift",
    "clip_seconds",
    "allow_short",
    "limit",
)

#: Tolerances of a new baseline file (edit the file to change them; ``--update`` keeps them).
DEFAULT_TOLERANCES: dict[str, Any] = {
    "why": "defaults of a new baseline; see the smoke baseline for how to choose them",
    "default": {"abs": 1e-9, "rel": 1e-6},
    "rules": [],
}

#: How a numeric value is judged (see the module docstring).
GATES = ("tolerance", "ci-overlap")
Gate = Literal["tolerance", "ci-overlap"]
#: Fields of a result's ``ci`` kept in a baseline.
BASELINE_CI_FIELDS = ("ci_low", "ci_high", "n", "status", "confidence_level")

Status = Literal["ok", "moved", "missing", "new", "undefined", "n_videos", "config", "weights", "protocol", "samples"]
#: Statuses that fail the gate.
FAILING: frozenset[str] = frozenset(
    {"moved", "missing", "undefined", "n_videos", "config", "weights", "protocol", "samples"}
)


@dataclass(frozen=True)
class Tolerance:
    """``|current - baseline| <= abs + rel * |baseline|``.

    Attributes:
        abs: Absolute part.
        rel: Relative part.
        rule: Which declaration it came from (``default``, ``rules[i] <pattern>``, ``metric``).
    """

    abs: float
    rel: float
    rule: str = "default"

    def allows(self, current: float, baseline: float) -> bool:
        """True when the difference is within the tolerance."""
        return abs(current - baseline) <= self.abs + self.rel * abs(baseline)

    def describe(self) -> str:
        """``abs 1e-06 + rel 1e-05``."""
        return f"abs {self.abs:g} + rel {self.rel:g}"


@dataclass(frozen=True)
class Finding:
    """One compared item.

    Attributes:
        method: Method name ("" for suite-level findings).
        key: Result key, or ``config_hash`` / ``protocol`` / ``n_samples``.
        status: See :data:`FAILING`.
        baseline: Reference value (number or text).
        current: Current value.
        tolerance: The tolerance applied (numeric items).
        direction: ``higher``/``lower`` is better, for the "better/worse" column.
        detail: Free text.
        ci_baseline: The baseline value's interval ``(low, high)`` (None when it has none).
        ci_current: The current value's interval.
        overlap: :func:`deepforcing.stats.ci_overlap` of the two (None: either has no interval).
        decided_by: Which rule gave the status of a compared number: ``tolerance``, ``ci-overlap``, or
            ``tolerance (no interval)`` (the ``ci-overlap`` gate fell back); empty for other items.
    """

    method: str
    key: str
    status: Status
    baseline: Any = None
    current: Any = None
    tolerance: Tolerance | None = None
    direction: T.Direction = None
    detail: str = ""
    ci_baseline: tuple[float, float] | None = None
    ci_current: tuple[float, float] | None = None
    overlap: bool | None = None
    decided_by: str = ""

    @property
    def failed(self) -> bool:
        """True when this finding fails the gate."""
        return self.status in FAILING

    @property
    def delta(self) -> float | None:
        """Current minus baseline, for numbers."""
        if _is_num(self.current) and _is_num(self.baseline):
            return float(self.current) - float(self.baseline)
        return None

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` / ``changed`` for a moved number with a direction."""
        d = self.delta
        if d is None or d == 0 or self.direction is None:
            return ""
        return "better" if (d > 0) == (self.direction == "higher") else "worse"


@dataclass(frozen=True)
class Comparison:
    """Result of comparing a run with a baseline.

    Attributes:
        findings: Every compared item.
        baseline_path: The baseline file.
        run: ``<suite>/<run-id>``.
        gate: The gate the numbers were judged by (``tolerance`` or ``ci-overlap``).
    """

    findings: tuple[Finding, ...]
    baseline_path: str
    run: str
    gate: Gate = "tolerance"

    @property
    def failed(self) -> list[Finding]:
        """Findings that fail the gate."""
        return [f for f in self.findings if f.failed]

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def counts(self) -> dict[str, int]:
        """Findings per status."""
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.status] = out.get(f.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (every finding)."""
        return {
            "ok": self.ok,
            "run": self.run,
            "baseline": self.baseline_path,
            "gate": self.gate,
            "counts": self.counts(),
            "findings": [
                {
                    "method": f.method,
                    "key": f.key,
                    "status": f.status,
                    "baseline": f.baseline,
                    "current": f.current,
                    "delta": f.delta,
                    "tolerance": None
                    if f.tolerance is None
                    else {"abs": f.tolerance.abs, "rel": f.tolerance.rel, "rule": f.tolerance.rule},
                    "detail": f.detail,
                    "ci_baseline": None if f.ci_baseline is None else list(f.ci_baseline),
                    "ci_current": None if f.ci_current is None else list(f.ci_current),
                    "overlap": f.overlap,
                    "decided_by": f.decided_by,
                }
                for f in self.findings
            ],
        }


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _finite(v: Any) -> float | None:
    return float(v) if _is_num(v) and math.isfinite(v) else None


# ------------------------------------------------------------------------------------------- baseline
def read_baseline(path: str | Path) -> dict[str, Any]:
    """Read and check a baseline file.

    Raises:
        UserError: Missing file (with the command that creates it), bad JSON or wrong kind/version.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(
            f"baseline not found: {p}",
            f"create it from a good run: deepforcing-eval regress RUN --baseline {p} --update",
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
        raise UserError(f"{p} is not a regression baseline (kind must be '{BASELINE_KIND}')")
    if data.get("schema_version") != BASELINE_SCHEMA_VERSION:
        raise UserError(f"{p} has schema_version {data.get('schema_version')!r}, expected {BASELINE_SCHEMA_VERSION}")
    _tolerance_rules(data, p)  # validate early
    baseline_gate(data, p)
    return data


def baseline_gate(data: dict[str, Any], path: str | Path = "baseline") -> Gate:
    """The gate a baseline declares (``tolerances.gate``; ``tolerance`` when absent).

    Raises:
        UserError: An unknown gate.
    """
    gate = (data.get("tolerances") or {}).get("gate", "tolerance")
    if gate not in GATES:
        raise UserError(f"{path}: tolerances.gate must be one of {', '.join(GATES)}, got {gate!r}")
    return gate


def _interval(ci: Any) -> tuple[float, float] | None:
    if not isinstance(ci, dict):
        return None
    lo, hi = _finite(ci.get("ci_low")), _finite(ci.get("ci_high"))
    return None if lo is None or hi is None else (lo, hi)


def judge(
    ref: float, cur: float, tol: Tolerance, base_ci: Any, cur_ci: Any, gate: Gate
) -> tuple[Status, bool | None, str]:
    """Status of a current number against its baseline under ``gate``: ``(status, overlap, decided_by)``.

    Args:
        ref: Baseline value.
        cur: Current value.
        tol: Its tolerance.
        base_ci: The baseline's ``ci`` dict (``ci_low``, ``ci_high``) or None.
        cur_ci: The current result's ``ci`` dict or None.
        gate: ``tolerance`` or ``ci-overlap``.
    """
    within = tol.allows(cur, ref)
    overlap = ci_overlap(cur_ci or {}, base_ci or {}) if gate == "ci-overlap" else None
    if gate == "tolerance" or within:
        return ("ok" if within else "moved"), overlap, "tolerance"
    if overlap is None:
        return "moved", None, "tolerance (no interval)"
    return ("ok" if overlap else "moved"), overlap, "ci-overlap"


def _tol(spec: Any, where: str) -> tuple[float, float]:
    if not isinstance(spec, dict) or not {"abs", "rel"} <= set(spec):
        raise UserError(f"{where}: a tolerance needs 'abs' and 'rel', got {spec!r}")
    a, r = spec["abs"], spec["rel"]
    if not (_is_num(a) and _is_num(r)) or a < 0 or r < 0:
        raise UserError(f"{where}: tolerances must be non-negative numbers, got abs={a!r} rel={r!r}")
    return float(a), float(r)


def _tolerance_rules(data: dict[str, Any], path: Path) -> tuple[Tolerance, list[tuple[str, Tolerance]]]:
    tol = data.get("tolerances") or {}
    a, r = _tol(tol.get("default"), f"{path}: tolerances.default")
    rules = []
    for i, rule in enumerate(tol.get("rules") or []):
        if not isinstance(rule, dict) or not isinstance(rule.get("match"), str):
            raise UserError(f"{path}: tolerances.rules[{i}] needs a 'match' pattern")
        ra, rr = _tol(rule, f"{path}: tolerances.rules[{i}]")
        rules.append((rule["match"], Tolerance(ra, rr, f"rules[{i}] {rule['match']}")))
    return Tolerance(a, r, "default"), rules


def tolerance_for(data: dict[str, Any], key: str, entry: dict[str, Any] | None = None) -> Tolerance:
    """The tolerance of result ``key``: the metric entry's ``tol``, else the first matching rule, else default."""
    if entry and entry.get("tol") is not None:
        a, r = _tol(entry["tol"], f"metric {key}")
        return Tolerance(a, r, "metric")
    default, rules = _tolerance_rules(data, Path("baseline"))
    for pattern, t in rules:
        if fnmatch.fnmatchcase(key, pattern):
            return t
    return default


def protocol_of(run: Run) -> dict[str, Any]:
    """The suite fields that define what the run's numbers mean (see :data:`PROTOCOL_FIELDS`)."""
    sc = run.suite_config
    return {k: sc.get(k) for k in PROTOCOL_FIELDS}


# -------------------------------------------------------------------------------------------- compare
def compare(
    run: Run,
    baseline: dict[str, Any],
    methods: list[str] | None = None,
    path: str = "",
    gate: Gate | None = None,
) -> Comparison:
    """Compare every result of ``run`` with ``baseline``.

    Args:
        run: The run.
        baseline: A baseline document (:func:`read_baseline`).
        methods: Compare only these methods (default: every method of the baseline and the run).
        path: The baseline's path (for messages).
        gate: ``tolerance`` or ``ci-overlap`` (default: the baseline's ``tolerances.gate``, else ``tolerance``).

    Raises:
        UserError: The run is of another suite than the baseline, ``methods`` names a method neither has, or
            an unknown gate.
    """
    if gate is None:
        gate = baseline_gate(baseline, path or "baseline")
    elif gate not in GATES:
        raise UserError(f"unknown gate {gate!r}", f"choose one of {', '.join(GATES)}")
    if baseline.get("suite") != run.suite:
        raise UserError(
            f"run {run.name} is of suite '{run.suite}', the baseline {path} of suite '{baseline.get('suite')}'",
            "compare with the baseline of the same suite",
        )
    base_methods: dict[str, Any] = baseline.get("methods") or {}
    names = list(dict.fromkeys([*base_methods, *run.methods]))
    if methods:
        unknown = [m for m in methods if m not in names]
        if unknown:
            raise UserError(f"--methods: {', '.join(unknown)} not in the run or the baseline", f"choose from {names}")
        names = [m for m in names if m in methods]
    findings: list[Finding] = []
    proto_base, proto_now = baseline.get("protocol") or {}, protocol_of(run)
    for k in PROTOCOL_FIELDS:
        if proto_base.get(k) != proto_now.get(k):
            findings.append(
                Finding(
                    "",
                    f"protocol.{k}",
                    "protocol",
                    proto_base.get(k),
                    proto_now.get(k),
                    detail="the suite changed; bump its version and re-bless",
                )
            )
    for m in names:
        b = base_methods.get(m)
        if b is None:
            findings.append(Finding(m, "*", "new", None, "present", detail="method not in the baseline"))
            continue
        if m not in run.methods:
            findings.append(Finding(m, "*", "missing", "present", None, detail="method not in the run"))
            continue
        ch = run.config_hash(m)
        if b.get("config_hash") != ch:
            findings.append(
                Finding(m, "config_hash", "config", b.get("config_hash"), ch, detail="the method's settings changed")
            )
        wid = ((run.aggregate.get("methods") or {}).get(m) or {}).get("weights_id")
        if b.get("weights_id") is not None and b.get("weights_id") != wid:
            findings.append(
                Finding(m, "weights_id", "weights", b.get("weights_id"), wid, detail="different generator weights")
            )
        ns_now = (run.aggregate.get("n_samples") or {}).get(m)
        if b.get("n_samples") is not None and b.get("n_samples") != ns_now:
            findings.append(Finding(m, "n_samples", "samples", b.get("n_samples"), ns_now))
        results = run.results(m)
        base_metrics: dict[str, Any] = b.get("metrics") or {}
        for key in sorted(set(base_metrics) | set(results)):
            entry, now = base_metrics.get(key), results.get(key)
            direction = T.direction_of(now.get("higher_is_better") if now else entry.get("higher_is_better"))
            if entry is None:
                findings.append(
                    Finding(
                        m,
                        key,
                        "new",
                        None,
                        _finite(now.get("value")),
                        direction=direction,
                        detail="not in the baseline",
                    )
                )
                continue
            tol = tolerance_for(baseline, key, entry)
            if now is None:
                findings.append(Finding(m, key, "missing", entry.get("value"), None, tol, direction))
                continue
            ref, cur = _finite(entry.get("value")), _finite(now.get("value"))
            if entry.get("n_videos") is not None and entry.get("n_videos") != now.get("n_videos"):
                findings.append(
                    Finding(
                        m,
                        key,
                        "n_videos",
                        entry.get("n_videos"),
                        now.get("n_videos"),
                        tol,
                        direction,
                        "number of videos behind the value",
                    )
                )
                continue
            base_ci, cur_ci = entry.get("ci"), now.get("ci")
            intervals = {"ci_baseline": _interval(base_ci), "ci_current": _interval(cur_ci)}
            if ref is None or cur is None:
                status: Status = "ok" if ref is None and cur is None else "undefined"
                findings.append(Finding(m, key, status, ref, cur, tol, direction, **intervals))
                continue
            status, overlap, decided_by = judge(ref, cur, tol, base_ci, cur_ci, gate)
            detail = ""
            if decided_by == "ci-overlap":
                detail = "intervals overlap" if overlap else "intervals disjoint"
            elif decided_by == "tolerance (no interval)":
                detail = "no interval on one side: tolerance decides"
            findings.append(
                Finding(
                    m,
                    key,
                    status,
                    ref,
                    cur,
                    tol,
                    direction,
                    detail,
                    overlap=overlap,
                    decided_by=decided_by,
                    **intervals,
                )
            )
    return Comparison(tuple(findings), path, run.name, gate)


def environment_notes(run: Run, baseline: dict[str, Any]) -> list[str]:
    """Differences between the run's machine and libraries and the blessed run's (never a failure by itself).

    Generator float noise of another CPU or library version can flip a few 8-bit pixel values, and the lossy mp4
    encoder then changes whole blocks: numbers can move for reasons that are not a regression. These notes say
    so next to the findings.
    """
    blessed = baseline.get("blessed_from") or {}
    prov = run.aggregate.get("provenance") or {}
    notes = []
    dev_b, dev_r = (blessed.get("device") or {}).get("name"), (prov.get("device") or {}).get("name")
    if dev_b and dev_r and dev_b != dev_r:
        notes.append(f"device differs from the blessed run's: {dev_b} -> {dev_r}")
    vb, vr = blessed.get("versions") or {}, prov.get("versions") or {}
    changed = [f"{k} {vb[k]} -> {vr.get(k)}" for k in sorted(vb) if k in vr and vb[k] != vr[k]]
    if changed:
        notes.append("library versions differ from the blessed run's: " + ", ".join(changed))
    return notes


# ---------------------------------------------------------------------------------------------- tables
def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if _is_num(v):
        return f"{v:.8g}"
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def _fmt_ci(ci: tuple[float, float] | None) -> str:
    return "—" if ci is None else f"[{ci[0]:.6g}, {ci[1]:.6g}]"


def findings_table(comparison: Comparison, show_all: bool = False) -> T.Table:
    """What moved (or every item with ``show_all``) as a table: method, metric, baseline, current, delta, tolerance.

    Under the ``ci-overlap`` gate the intervals of both sides are shown too.
    """
    with_ci = comparison.gate == "ci-overlap"
    columns = (
        T.Column("method", "Method", kind="label"),
        T.Column("metric", "Metric", kind="text"),
        T.Column("baseline", "Baseline", kind="ours"),
        T.Column("current", "Current", kind="ours"),
        T.Column("delta", "Δ", kind="delta"),
        T.Column("rel", "Δ / |baseline|", kind="delta"),
        T.Column("tolerance", "Tolerance", kind="text"),
        *(
            (
                T.Column("ci_baseline", "Baseline CI", kind="text"),
                T.Column("ci_current", "Current CI", kind="text"),
            )
            if with_ci
            else ()
        ),
        T.Column("status", "Status", kind="text"),
    )
    rows = []
    for f in comparison.findings:
        if not show_all and f.status == "ok":
            continue
        plain = f.key in ("*", "config_hash", "weights_id", "n_samples") or f.key.startswith("protocol.")
        label = f.key if plain else describe(f.key).label
        d = f.delta
        rel = None if d is None or not f.baseline else d / abs(float(f.baseline))
        status = f.status + (f" ({f.verdict})" if f.verdict and f.status == "moved" else "")
        if f.detail:
            status += f": {f.detail}"
        rows.append(
            (
                T.text(f.method or "suite"),
                T.text(label, note=f.key),
                T.Cell(f.baseline if _is_num(f.baseline) else None, _fmt(f.baseline)),
                T.Cell(f.current if _is_num(f.current) else None, _fmt(f.current)),
                T.number(d, "+.3g"),
                T.number(rel, "+.2e"),
                T.text(f.tolerance.describe() if f.tolerance else "—", note=f.tolerance.rule if f.tolerance else ""),
                *((T.text(_fmt_ci(f.ci_baseline)), T.text(_fmt_ci(f.ci_current))) if with_ci else ()),
                T.text(status),
            )
        )
    c = comparison.counts()
    verdict = "FAIL" if comparison.failed else "ok"
    title = f"regress {comparison.run} vs {comparison.baseline_path}: {verdict}"
    notes = [
        "compared: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())),
        "a value passes when |current - baseline| <= abs + rel x |baseline| (tolerances declared in the baseline)",
    ]
    if with_ci:
        notes.append(
            "gate ci-overlap: a value outside its tolerance also passes when its 95% interval over prompts overlaps "
            "the baseline's; without an interval on either side the tolerance decides"
        )
    return T.Table("regress", title, columns, tuple(rows), tuple(notes), best=None)


# --------------------------------------------------------------------------------------------- update
def make_baseline(run: Run, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """A baseline document from ``run``, keeping the previous file's tolerances and description.

    Args:
        run: The blessed run.
        previous: The current baseline (None: defaults).
    """
    prev = previous or {}
    prov = run.aggregate.get("provenance") or {}
    methods = {}
    for m in run.methods:
        metrics = {}
        for key, entry in sorted(run.results(m).items()):
            old = ((prev.get("methods") or {}).get(m) or {}).get("metrics", {}).get(key) or {}
            item = {
                "value": _finite(entry.get("value")),
                "n_videos": entry.get("n_videos"),
                "higher_is_better": entry.get("higher_is_better"),
            }
            ci = entry.get("ci")
            if isinstance(ci, dict):
                item["ci"] = {k: ci.get(k) for k in BASELINE_CI_FIELDS}
            if old.get("tol") is not None:
                item["tol"] = old["tol"]
            metrics[key] = item
        methods[m] = {
            "config_hash": run.config_hash(m),
            "weights_id": ((run.aggregate.get("methods") or {}).get(m) or {}).get("weights_id"),
            "n_samples": (run.aggregate.get("n_samples") or {}).get(m),
            "metrics": metrics,
        }
    return {
        "kind": BASELINE_KIND,
        "schema_version": BASELINE_SCHEMA_VERSION,
        "description": prev.get("description", f"reference numbers of suite {run.suite}"),
        "suite": run.suite,
        "protocol": protocol_of(run),
        "tolerances": prev.get("tolerances") or DEFAULT_TOLERANCES,
        "blessed_from": {
            "run": run.name,
            "created_at": prov.get("created_at"),
            "git": prov.get("git"),
            "device": prov.get("device"),
            "dtype": prov.get("dtype"),
            "versions": prov.get("versions"),
        },
        "methods": methods,
    }


def dump_baseline(doc: dict[str, Any]) -> str:
    """Canonical text of a baseline (2-space JSON, keys in document order, exact float repr)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def unified_diff(old: str, new: str, path: str, limit: int = 200) -> str:
    """A unified diff of two baseline texts, cut after ``limit`` lines."""
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"a/{path}", f"b/{path}", lineterm="", n=1))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more diff lines)"]
    return "\n".join(lines)
