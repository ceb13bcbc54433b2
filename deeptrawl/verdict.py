"""Fusion: per-detector results -> one score and a label.

``fuse(results, fuser)`` takes one of two fusers, chosen by the caller (the analyzer
uses the installed trained model when there is one, see ``deeptrawl.fusion``):

* ``FusionModel`` (e.g. ``stack-v1``): a logistic-regression stacker over every
  detector's score and abstention, calibrated and given its operating thresholds on
  held-out data (``deeptrawl/fusion/stacking.py``). Its score is a probability.
* ``VerdictRule`` (``rule-v2``): the transparent hand-written rule below, the fallback
  while no trained model is installed. Its score is evidence, not a probability.

In order:

1. The object could not be analysed (a media error, or every applicable detector
   failed) -> ``error``, no score.
2. Any *decisive* finding (e.g. a valid C2PA manifest declaring AI generation, a
   generator's own signature in the metadata) -> its score decides: the fused score is
   the highest decisive finding score, labelled with the rule's thresholds. With a
   fusion model too: a declaration's score is on the detectors' own scale, which the
   rule's thresholds were set for, not on the stacker's calibrated-probability scale.
3. No detector spoke (all abstained or failed, or none applies) -> ``inconclusive``
   with no score. Otherwise:

   * **Rule**: the fused score is the strongest weighted evidence: the maximum over
     the detectors that did not abstain of ``weight x score`` (weights from
     ``VerdictRule.weights``; unnamed detectors weigh 1.0, weight 0 silences one).
     Why a maximum and not a mean: the forensic detectors are specialists (copy-move
     says nothing about a splice, the spectrum nothing about a clone), so one
     detector's silence does not contradict another's finding; a mean would let four
     silent specialists outvote the one that found something. The price is that false
     positives add up over detectors, which is why "likely_authentic" needs *every*
     detector low.
   * **Model**: the fused score is the calibrated probability; the reason names the
     detectors that contributed most to it (``FusionModel.explain``). A trained
     model learns what the rule's maximum encodes by hand, and also how much each
     detector's false positives cost, from data.
4. Label: score >= the synthetic threshold -> ``likely_synthetic``; score <= the
   authentic threshold -> ``likely_authentic``; in between -> ``inconclusive``. The
   rule's thresholds are set by hand; the model's are chosen on held-out data for a
   target false-positive rate on real media and a largest share of missed fakes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Collection, Mapping

from deeptrawl.config import VerdictRule
from deeptrawl.detectors.base import DetectorResult
from deeptrawl.fusion import FusionModel

#: What ``fuse`` accepts; both carry the ``version`` that reports and detector-set ids record.
Fuser = VerdictRule | FusionModel

#: Reads decisive findings when a fusion model fuses (step 2).
_DECLARATIONS = VerdictRule()


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


def fuse(results: Mapping[str, DetectorResult], fuser: Fuser) -> Verdict:
    ok = {name: r for name, r in results.items() if r.error is None}
    if results and not ok:
        return Verdict(Label.ERROR, None, "every applicable detector failed")

    decisive = [(f.score, name, f) for name, r in ok.items() for f in r.findings if f.decisive]
    if decisive:
        score, name, finding = max(decisive, key=lambda t: t[0])
        rule = fuser if isinstance(fuser, VerdictRule) else _DECLARATIONS
        label = _label(score, rule.synthetic_threshold, rule.authentic_threshold)
        return Verdict(label, score, f"decisive finding from {name}: {finding.message}")

    scored = {name: r.score for name, r in ok.items() if r.score is not None}
    if isinstance(fuser, FusionModel):
        # Detectors the model was not trained on cannot speak to it.
        scored = {name: value for name, value in scored.items() if name in fuser.feature_names}
    if not scored:
        what = "no detector applies to this media kind" if not results else "every detector abstained"
        return Verdict(Label.INCONCLUSIVE, None, what)
    if isinstance(fuser, FusionModel):
        return _stacked(results, scored.keys(), fuser)
    return _strongest(scored, fuser)


def _strongest(scored: Mapping[str, float], rule: VerdictRule) -> Verdict:
    weighted = {name: rule.weights.get(name, 1.0) * value for name, value in scored.items()}
    top = max(weighted, key=weighted.get)
    score = min(1.0, max(0.0, weighted[top]))
    label = _label(score, rule.synthetic_threshold, rule.authentic_threshold)
    return Verdict(label, score, f"strongest evidence of {len(scored)} detector(s): {top}")


def _stacked(results: Mapping[str, DetectorResult], spoke: Collection[str], model: FusionModel) -> Verdict:
    score = float(model.predict([results])[0])
    contributions = model.explain(results)
    # A silent detector can drive the verdict too (its abstention is a feature): say so.
    top = sorted(contributions, key=lambda name: -abs(contributions[name]))[:3]
    drivers = ", ".join(
        f"{name} {contributions[name]:+.2f}{'' if name in spoke else ' (abstained)'}" for name in top
    )
    return Verdict(
        _label(score, model.t_synthetic, model.t_authentic),
        score,
        f"calibrated fusion ({model.version}) of {len(spoke)} detector(s); logit driven by {drivers}",
    )


def _label(score: float, synthetic: float, authentic: float) -> Label:
    if score >= synthetic:
        return Label.LIKELY_SYNTHETIC
    if score <= authentic:
        return Label.LIKELY_AUTHENTIC
    return Label.INCONCLUSIVE
