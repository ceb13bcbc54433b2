"""The fusion rule: per-detector scores -> one score and a label.

The rule (``VerdictRule``, version ``rule-v2``), in order:

1. The object could not be analysed (a media error, or every applicable detector
   failed) -> ``error``, no score.
2. Any *decisive* finding (e.g. a valid C2PA manifest declaring AI generation, a
   generator's own signature in the metadata) -> its score decides: the fused score is
   the highest decisive finding score.
3. Otherwise the fused score is the strongest weighted evidence: the maximum over the
   detectors that did not abstain of ``weight x score`` (weights from
   ``VerdictRule.weights``; unnamed detectors weigh 1.0, weight 0 silences one).
   No detector spoke -> ``inconclusive`` with no score.

   Why a maximum and not a mean: the forensic detectors are specialists (copy-move says
   nothing about a splice, the spectrum nothing about a clone), so one detector's silence
   does not contradict another's finding; a mean would let four silent specialists
   outvote the one that found something. The price is that false positives add up over
   detectors, which is why "likely_authentic" needs *every* detector low.
4. Label: score >= ``synthetic_threshold`` -> ``likely_synthetic``; score <=
   ``authentic_threshold`` -> ``likely_authentic``; in between -> ``inconclusive``.

This is a transparent rule, not a calibrated probability; calibrated fusion trained on
held-out data replaces step 3 later (issue #4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

from deeptrawl.config import VerdictRule
from deeptrawl.detectors.base import DetectorResult


class Label(str, enum.Enum):
    LIKELY_SYNTHETIC = "likely_synthetic"
    LIKELY_AUTHENTIC = "likely_authentic"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


@dataclass(frozen=True)
class Verdict:
    label: Label
    score: float | None
    reason: str


def fuse(results: Mapping[str, DetectorResult], rule: VerdictRule) -> Verdict:
    ok = {name: r for name, r in results.items() if r.error is None}
    if results and not ok:
        return Verdict(Label.ERROR, None, "every applicable detector failed")

    decisive = [(f.score, name, f) for name, r in ok.items() for f in r.findings if f.decisive]
    if decisive:
        score, name, finding = max(decisive, key=lambda t: t[0])
        return Verdict(_label(score, rule), score, f"decisive finding from {name}: {finding.message}")

    scored = {name: r.score for name, r in ok.items() if r.score is not None}
    if not scored:
        what = "no detector applies to this media kind" if not results else "every detector abstained"
        return Verdict(Label.INCONCLUSIVE, None, what)
    weighted = {name: rule.weights.get(name, 1.0) * value for name, value in scored.items()}
    top = max(weighted, key=weighted.get)
    score = min(1.0, max(0.0, weighted[top]))
    return Verdict(_label(score, rule), score, f"strongest evidence of {len(scored)} detector(s): {top}")


def _label(score: float, rule: VerdictRule) -> Label:
    if score >= rule.synthetic_threshold:
        return Label.LIKELY_SYNTHETIC
    if score <= rule.authentic_threshold:
        return Label.LIKELY_AUTHENTIC
    return Label.INCONCLUSIVE
