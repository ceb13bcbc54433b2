"""The stacking fusion model on synthetic, seeded detector results whose truth is known.

Each synthetic detector's logit is Gaussian with unit variance and means -d/2 (real) and
+d/2 (fake), so its log-likelihood ratio is exactly ``d * logit``: the Bayes-optimal
fusion is linear in the features (the stacker's model class contains it) and its AUC
can be computed on a large sample. Abstentions are random unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import pytest
from scipy.special import expit

from deeptrawl import fusion
from deeptrawl.analysis import Analyzer
from deeptrawl.models import weights
from deeptrawl.config import VerdictRule
from deeptrawl.detectors.base import DetectorResult, Finding
from deeptrawl.errors import ConfigError, DetectorFailed
from deeptrawl.fusion import FusionModel
from deeptrawl.fusion.calibration import Platt
from deeptrawl.fusion.features import columns, featurize
from deeptrawl.metrics import expected_calibration_error as ece, roc_auc
from deeptrawl.verdict import Label, fuse

#: Separation d of each detector's logit between the classes; "noise" knows nothing.
SEPARATION = {"strong": 2.0, "medium": 1.2, "weak": 0.6, "noise": 0.0}
#: Probability that each detector abstains, the same for reals and fakes.
ABSTAIN = {"strong": 0.2, "medium": 0.0, "weak": 0.3, "noise": 0.1}
NAMES = list(SEPARATION)

ABSTAINED = DetectorResult.abstain("nothing to say")


@dataclass(frozen=True)
class Sample:
    rows: list[dict[str, DetectorResult]]
    labels: np.ndarray  # True = fake
    llr: np.ndarray  # the Bayes-optimal log-likelihood ratio of each row


def sample(
    n: int, seed: int, separation: Mapping[str, float] = SEPARATION, abstain: Mapping[str, float] = ABSTAIN
) -> Sample:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    names = list(separation)
    d = np.array([separation[k] for k in names])
    x = rng.normal(np.where(y[:, None], d / 2, -d / 2), 1.0)
    gone = rng.random(x.shape) < np.array([abstain.get(k, 0.0) for k in names])
    rows = [
        {name: ABSTAINED if g else DetectorResult(score=s) for name, s, g in zip(names, scores, gones)}
        for scores, gones in zip(expit(x).tolist(), gone.tolist())
    ]
    return Sample(rows, y, np.where(gone, 0.0, d * x).sum(axis=1))


def scored(score: float | None, *findings: Finding) -> DetectorResult:
    return DetectorResult(score=score, findings=findings)


@pytest.fixture(scope="module")
def train() -> Sample:
    return sample(4000, seed=1)


@pytest.fixture(scope="module")
def fresh() -> Sample:
    return sample(20000, seed=2)


@pytest.fixture(scope="module")
def model(train: Sample) -> FusionModel:
    return FusionModel.fit(train.rows, train.labels, feature_names=NAMES, data="synthetic, seed 1")


# -- features ------------------------------------------------------------------------


def test_features_are_logits_and_abstention_indicators():
    rows = [
        {"a": scored(0.5), "b": scored(None)},
        {"a": scored(1.0), "b": DetectorResult.failed(DetectorFailed("boom"))},
        {"a": scored(0.0)},  # "b" did not run
    ]
    x = featurize(rows, ["a", "b"])
    assert columns(["a", "b"]) == ["a", "a:abstained", "b", "b:abstained"]
    np.testing.assert_allclose(x[:, 0], [0.0, np.log(1e4 - 1), -np.log(1e4 - 1)])  # clipped, finite
    np.testing.assert_array_equal(x[:, 1], 0.0)
    np.testing.assert_array_equal(x[:, 2:], [[0.0, 1.0]] * 3)


# -- the stacker ---------------------------------------------------------------------


def test_weights_rank_informative_detectors_above_noise(model: FusionModel):
    score_weight = dict(zip(NAMES, model.weights[::2]))
    assert score_weight["strong"] > score_weight["medium"] > score_weight["weak"] > abs(score_weight["noise"])
    assert abs(score_weight["noise"]) < 0.1
    assert model.training.n_real + model.training.n_synthetic == 4000


def test_cross_fitted_auc_is_close_to_bayes_optimal(model: FusionModel, fresh: Sample):
    bayes = roc_auc(fresh.labels, fresh.llr)
    assert model.training.cv_auc == pytest.approx(bayes, abs=0.015)
    assert roc_auc(fresh.labels, model.predict(fresh.rows)) == pytest.approx(bayes, abs=0.005)


def test_explain_contributions_add_up_to_the_logit(model: FusionModel, fresh: Sample):
    for row in fresh.rows[:20]:
        contributions = model.explain(row)
        assert list(contributions) == NAMES
        assert model.intercept + sum(contributions.values()) == pytest.approx(model.logit([row])[0], abs=1e-9)


def test_abstaining_only_on_fakes_earns_weight():
    # "metadata" abstains on 40% of fakes and never on reals; its score is noise.
    rng = np.random.default_rng(3)
    base = sample(3000, seed=3, separation={"strong": 2.0, "metadata": 0.0}, abstain={})
    rows = [
        {**row, "metadata": ABSTAINED} if fake and rng.random() < 0.4 else row
        for row, fake in zip(base.rows, base.labels)
    ]
    model = FusionModel.fit(rows, base.labels, feature_names=["strong", "metadata"])
    weights = dict(zip(columns(model.feature_names), model.weights))
    assert weights["metadata:abstained"] > 1.0 > abs(weights["metadata"])
    probe = {"strong": scored(0.5)}
    assert model.predict([probe])[0] > model.predict([{**probe, "metadata": scored(0.5)}])[0] + 0.3
    assert model.explain(probe)["metadata"] > 0


# -- calibration ---------------------------------------------------------------------


def test_calibrated_on_a_fresh_sample(model: FusionModel, fresh: Sample):
    assert isinstance(model.calibration, Platt)
    assert ece(fresh.labels, model.predict(fresh.rows)) <= 0.05
    assert model.training.oof_ece <= 0.05


def test_isotonic_calibration_is_monotone_and_calibrated(train: Sample, fresh: Sample):
    iso = FusionModel.fit(train.rows, train.labels, feature_names=NAMES, calibration="isotonic")
    logits, probs = iso.logit(fresh.rows), iso.predict(fresh.rows)
    assert np.all(np.diff(probs[np.argsort(logits)]) >= 0)
    assert ece(fresh.labels, probs) <= 0.05
    assert FusionModel.from_json(iso.to_json()) == iso


def test_calibration_corrects_an_overconfident_stacker():
    # 100 noise detectors, 1,000 objects, almost no penalty: the stacker overfits and
    # its raw logits are over-confident on unseen objects. Cross-fitting sees that.
    separation = {"strong": 2.0, "medium": 1.2, "weak": 0.6, **{f"noise{i}": 0.0 for i in range(100)}}
    train, fresh = sample(1000, 5, separation, {}), sample(10000, 6, separation, {})
    model = FusionModel.fit(train.rows, train.labels, feature_names=list(separation), l2=1e-6, folds=10)
    logits = model.logit(fresh.rows)
    # The slope that would calibrate the raw logits on fresh data: well below 1.
    assert Platt.fit(logits, fresh.labels).a < 0.75
    assert model.calibration.a < 0.75
    raw, calibrated = ece(fresh.labels, expit(logits)), ece(fresh.labels, model.predict(fresh.rows))
    assert calibrated <= 0.04
    assert calibrated < 0.6 * raw


# -- operating thresholds ------------------------------------------------------------


def test_thresholds_hold_on_a_fresh_sample(model: FusionModel, fresh: Sample):
    probs = model.predict(fresh.rows)
    false_positive_rate = np.mean(probs[~fresh.labels] >= model.t_synthetic)
    assert 0.002 <= false_positive_rate <= 0.02  # target 0.01 over about 2,000 reals
    missed = np.mean(probs[fresh.labels] <= model.t_authentic)
    assert 0.02 <= missed <= 0.08  # target 0.05
    assert 0.0 < model.t_authentic < model.t_synthetic < 1.0


def test_inconclusive_band_is_ordered_and_capped(train: Sample, fresh: Sample, model: FusionModel):
    labels = {fuse(row, model).label for row in fresh.rows[:500]}
    assert labels == {Label.LIKELY_SYNTHETIC, Label.LIKELY_AUTHENTIC, Label.INCONCLUSIVE}
    # Allowing 90% missed fakes would put t_authentic above t_synthetic: capped there.
    loose = FusionModel.fit(train.rows, train.labels, feature_names=NAMES, max_missed=0.9)
    assert loose.t_authentic == loose.t_synthetic


# -- storage and determinism ---------------------------------------------------------


def test_json_round_trip_predicts_identically(model: FusionModel, fresh: Sample):
    text = model.to_json()
    again = FusionModel.from_json(text)
    assert again == model
    assert again.to_json() == text
    np.testing.assert_array_equal(again.predict(fresh.rows[:1000]), model.predict(fresh.rows[:1000]))
    assert '"version": "stack-v1"' in text and '"data": "synthetic, seed 1"' in text


@pytest.mark.parametrize("damage", [
    lambda text: text.replace('"weights"', '"w"'),
    lambda text: text.replace('"kind": "platt"', '"kind": "magic"'),
    lambda text: "{not json",
])
def test_malformed_model_documents_are_config_errors(model: FusionModel, damage):
    with pytest.raises(ConfigError):
        FusionModel.from_json(damage(model.to_json()))


def test_width_mismatch_is_a_config_error(model: FusionModel):
    with pytest.raises(ConfigError, match="weights"):
        FusionModel.from_json(replace(model, weights=model.weights[:-1]).to_json())


def test_fit_is_deterministic_for_a_seed(train: Sample, model: FusionModel):
    again = FusionModel.fit(train.rows, train.labels, feature_names=NAMES, data="synthetic, seed 1")
    assert again.to_json() == model.to_json()
    other = FusionModel.fit(train.rows, train.labels, feature_names=NAMES, seed=7)
    assert other.calibration != model.calibration  # other folds, other out-of-fold logits


def test_folds_given_by_the_caller_replace_the_stratified_ones(train: Sample, model: FusionModel):
    """`deeptrawl train` passes folds of whole source groups (no scene in two folds)."""
    from deeptrawl.fusion.stacking import _stratified_folds

    default = _stratified_folds(np.asarray(train.labels), 5, 0)
    same = FusionModel.fit(train.rows, train.labels, feature_names=NAMES, fold_of=default, data="synthetic, seed 1")
    assert same.to_json() == model.to_json()
    three = FusionModel.fit(train.rows, train.labels, feature_names=NAMES, fold_of=np.arange(len(train.labels)) % 3)
    assert three.training.folds == 3
    for bad in ([0] * len(train.labels), np.arange(len(train.labels)) % 3 * 2, [0, 1]):
        with pytest.raises(ValueError, match="fold"):
            FusionModel.fit(train.rows, train.labels, feature_names=NAMES, fold_of=bad)


def test_fit_needs_both_classes_in_every_fold(train: Sample):
    with pytest.raises(ValueError, match="each class"):
        FusionModel.fit(train.rows[:10], [True] * 10, feature_names=NAMES)


# -- the verdict with a model --------------------------------------------------------


def test_verdict_is_the_calibrated_probability_with_its_drivers(model: FusionModel, fresh: Sample):
    for row in fresh.rows[:50]:
        verdict = fuse(row, model)
        p = model.predict([row])[0]
        assert verdict.score == pytest.approx(p)
        if p >= model.t_synthetic:
            assert verdict.label is Label.LIKELY_SYNTHETIC
        elif p <= model.t_authentic:
            assert verdict.label is Label.LIKELY_AUTHENTIC
        else:
            assert verdict.label is Label.INCONCLUSIVE
        contributions = model.explain(row)
        assert max(contributions, key=lambda k: abs(contributions[k])) in verdict.reason
        assert "stack-v1" in verdict.reason


def test_decisive_findings_override_the_model(model: FusionModel):
    low = {name: scored(0.01) for name in NAMES}
    declared = {**low, "metadata": scored(0.99, Finding("c2pa_ai_declared", "C2PA says AI", 0.99, decisive=True))}
    verdict = fuse(declared, model)
    assert (verdict.label, verdict.score) == (Label.LIKELY_SYNTHETIC, 0.99)
    assert "C2PA says AI" in verdict.reason
    capture = {name: scored(0.99) for name in NAMES}
    capture["metadata"] = scored(0.05, Finding("c2pa_capture", "trusted capture", 0.05, decisive=True))
    assert fuse(capture, model).label is Label.LIKELY_AUTHENTIC


def test_all_failed_is_an_error_with_the_model(model: FusionModel):
    verdict = fuse({name: DetectorResult.failed(DetectorFailed("boom")) for name in NAMES}, model)
    assert (verdict.label, verdict.score) == (Label.ERROR, None)


def test_nothing_the_model_knows_spoke_is_inconclusive(model: FusionModel):
    for results in ({name: ABSTAINED for name in NAMES}, {"unknown": scored(0.99)}, {}):
        verdict = fuse(results, model)
        assert (verdict.label, verdict.score) == (Label.INCONCLUSIVE, None)


# -- installation --------------------------------------------------------------------


def test_analyzer_uses_the_installed_model_else_the_rule(model: FusionModel, tmp_path, monkeypatch):
    assert fusion.load(tmp_path) is None
    digest = weights.save(fusion.MODEL_FILE, model.to_json().encode(), tmp_path)
    # The installed model's version names its file: a refit is a new detector set.
    assert fusion.load(tmp_path) == dataclasses.replace(model, version=f"stack-v1+{digest[:8]}")
    monkeypatch.setattr(fusion, "load_default", lambda: None)
    assert isinstance(fusion.default_fuser(NAMES), VerdictRule)
    monkeypatch.setattr(fusion, "load_default", lambda: model)
    assert fusion.default_fuser(NAMES) == model
    # A scan running only some of the model's detectors would feed it false abstentions.
    assert isinstance(fusion.default_fuser(NAMES[:-1]), VerdictRule)
    assert isinstance(Analyzer([]).rule, VerdictRule)
    assert Analyzer([], rule=model).rule == model  # an explicit choice wins