"""The fusion rule (``rule-v2``), one step at a time, on hand-made detector results."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from deeptrawl.config import VerdictRule
from deeptrawl.detectors.base import DetectorResult, Finding
from deeptrawl.errors import CorruptMedia, DetectorFailed
from deeptrawl.verdict import Label, fuse

RULE = VerdictRule()  # synthetic >= 0.70, authentic <= 0.35


def scored(score: float | None, *findings: Finding) -> DetectorResult:
    return DetectorResult(score=score, findings=findings)


def failed(message: str = "boom") -> DetectorResult:
    return DetectorResult.failed(DetectorFailed(message))


def decisive(score: float, message: str = "declared AI") -> Finding:
    return Finding("declared", message, score, decisive=True)


def rule(**weights: float) -> VerdictRule:
    return VerdictRule(weights=MappingProxyType(weights))


def test_decisive_finding_wins_over_the_other_scores():
    results = {
        "metadata": scored(0.99, decisive(0.99, "C2PA says AI")),
        "ela": scored(0.0),
        "other": scored(0.0),
    }
    verdict = fuse(results, RULE)
    assert verdict.label is Label.LIKELY_SYNTHETIC
    assert verdict.score == 0.99
    assert "metadata" in verdict.reason and "C2PA says AI" in verdict.reason


def test_highest_decisive_finding_decides():
    results = {
        "a": scored(0.5, decisive(0.2, "weak"), Finding("x", "not decisive", 1.0)),
        "b": scored(0.9, decisive(0.9, "strong")),
    }
    verdict = fuse(results, RULE)
    assert verdict.score == 0.9
    assert "strong" in verdict.reason


def test_decisive_finding_can_settle_authentic():
    verdict = fuse({"metadata": scored(0.05, decisive(0.05, "trusted capture")), "ela": scored(0.9)}, RULE)
    assert (verdict.label, verdict.score) == (Label.LIKELY_AUTHENTIC, 0.05)


def test_non_decisive_findings_do_not_override_the_scores():
    verdict = fuse({"a": scored(0.2, Finding("hint", "a hint", 0.99)), "b": scored(0.4)}, RULE)
    assert verdict.score == pytest.approx(0.4)


def test_decisive_finding_of_a_failed_detector_is_ignored():
    bad = DetectorResult(score=None, findings=(decisive(0.99),), error=DetectorFailed("crashed"))
    verdict = fuse({"a": bad, "b": scored(0.1)}, RULE)
    assert (verdict.label, verdict.score) == (Label.LIKELY_AUTHENTIC, 0.1)


def test_strongest_evidence_with_default_weights():
    verdict = fuse({"a": scored(0.2), "b": scored(0.6), "c": scored(1.0)}, rule())
    assert verdict.score == pytest.approx(1.0)
    assert "3 detector" in verdict.reason and ": c" in verdict.reason


def test_one_silent_specialist_does_not_outvote_a_finding():
    verdict = fuse({"copymove": scored(0.0), "spectrum": scored(0.05), "ela": scored(0.9)}, rule())
    assert verdict.label is Label.LIKELY_SYNTHETIC


def test_weights_are_respected():
    results = {"a": scored(0.9), "b": scored(0.5)}
    assert fuse(results, rule(a=0.5)).score == pytest.approx(0.5)  # 0.45 vs 0.5
    assert fuse(results, rule(b=0.5)).score == pytest.approx(0.9)
    # Weight 0 silences a detector; weighted scores are clipped to [0, 1].
    assert fuse(results, rule(a=0.0)).score == pytest.approx(0.5)
    assert fuse(results, rule(a=2.0)).score == 1.0


def test_all_zero_weights_give_zero():
    assert fuse({"a": scored(0.3), "b": scored(0.8)}, rule(a=0.0, b=0.0)).score == 0.0


def test_abstentions_are_ignored_not_counted_as_authentic():
    verdict = fuse({"metadata": scored(None), "ela": scored(0.9)}, RULE)
    assert verdict.score == pytest.approx(0.9)
    assert verdict.label is Label.LIKELY_SYNTHETIC
    assert "1 detector" in verdict.reason


def test_failed_detectors_are_ignored_when_others_speak():
    verdict = fuse({"a": failed(), "b": scored(0.8)}, RULE)
    assert (verdict.label, verdict.score) == (Label.LIKELY_SYNTHETIC, 0.8)


def test_all_abstain_is_inconclusive_without_score():
    verdict = fuse({"a": scored(None), "b": scored(None)}, RULE)
    assert (verdict.label, verdict.score) == (Label.INCONCLUSIVE, None)
    assert "abstained" in verdict.reason


def test_abstain_plus_failure_is_inconclusive():
    verdict = fuse({"a": scored(None), "b": failed()}, RULE)
    assert (verdict.label, verdict.score) == (Label.INCONCLUSIVE, None)


def test_no_detector_applies_is_inconclusive():
    verdict = fuse({}, RULE)
    assert (verdict.label, verdict.score) == (Label.INCONCLUSIVE, None)
    assert "no detector applies" in verdict.reason


def test_all_failed_is_error():
    results = {"a": failed(), "b": DetectorResult.failed(CorruptMedia("bad pixels"))}
    verdict = fuse(results, RULE)
    assert (verdict.label, verdict.score) == (Label.ERROR, None)


@pytest.mark.parametrize(("score", "label"), [
    (0.0, Label.LIKELY_AUTHENTIC),
    (0.35, Label.LIKELY_AUTHENTIC),  # == authentic_threshold
    (0.3500001, Label.INCONCLUSIVE),
    (0.5, Label.INCONCLUSIVE),
    (0.6999999, Label.INCONCLUSIVE),
    (0.70, Label.LIKELY_SYNTHETIC),  # == synthetic_threshold
    (1.0, Label.LIKELY_SYNTHETIC),
])
def test_threshold_boundaries(score, label):
    assert fuse({"a": scored(score)}, RULE).label is label
    assert fuse({"a": scored(0.1, decisive(score))}, RULE).label is label


def test_custom_thresholds():
    strict = VerdictRule(synthetic_threshold=0.9, authentic_threshold=0.1)
    assert fuse({"a": scored(0.8)}, strict).label is Label.INCONCLUSIVE
    assert fuse({"a": scored(0.9)}, strict).label is Label.LIKELY_SYNTHETIC
    assert fuse({"a": scored(0.1)}, strict).label is Label.LIKELY_AUTHENTIC
