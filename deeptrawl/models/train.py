"""``deeptrawl train``: fit the learned detectors and the fusion on a corpus (``deeptrawl corpus build``).

On the CPU, in minutes, because every expensive step runs once and is cached:

* the frozen EfficientNet-Lite0 trunk runs once over every tile (whole-image CNN) and every
  face crop (face CNN); only the tail and the head train, on the cached trunk outputs.
  Tile labels come from the manipulation masks: a tile of a spliced photo that holds no
  pasted pixel is left out rather than called fake; every tile of a GAN image is fake;
* the spectral features are computed once for the frequency model (an MLP);
* the forensic detectors (which have no training) score every image once.

The ``train`` and ``calib`` splits are pooled and cut into folds of whole source groups
(``TrainSettings.folds``). Each network is trained once per fold without it and scores
it after every epoch, so every pooled image gets an out-of-fold (OOF) score from a model
that never saw its scene. Why: a model picked and calibrated on one split of four to nine
scenes did not transfer (a threshold chosen for 1% false positives on ``calib`` flagged
16-25% of test reals, model card); the OOF scores span every fitting scene. From them:

* each network's epoch count is the one with the best pooled OOF AUC, and the network
  that is written is trained on the whole pool for that many epochs;
* the fusion is fitted, calibrated and thresholded on the OOF scores, with its own
  cross-fitting on the same group folds and its L2 penalty chosen by grouped CV AUC.

The same caches give the leave-one-kind-out table: for each fake kind, everything is
retrained without it and tested on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch import nn

from deeptrawl.detectors.base import DetectorResult
from deeptrawl.detectors.learned.cnn import FACE_MARGIN, FACE_SEARCH_SIDE, MAX_PER_SIDE, MIN_FACE_SCORE
from deeptrawl.errors import ConfigError
from deeptrawl.metrics import roc_auc
from deeptrawl.models import tiles, weights
from deeptrawl.models.frequency import FrequencyNet
from deeptrawl.models.spatial import SpatialNet

Progress = Callable[[str, int, int], None]
MODELS = ("cnn", "face_cnn", "frequency", "fusion")
LEARNED = ("cnn", "face_cnn", "frequency")
#: Steps of the frequency MLP's full-batch training, checked every ``FREQUENCY_CHECK``.
FREQUENCY_STEPS, FREQUENCY_CHECK = 400, 10
#: L2 penalties tried for the fusion, the best by grouped cross-validated AUC kept.
FUSION_L2 = (1e-3, 1e-2, 1e-1, 1.0)
FORENSIC = ("ela", "noise", "jpeg", "copymove", "spectrum", "metadata")


def _quiet(task: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    corpus: Path
    out: Path = weights.WEIGHTS_DIR
    #: The most epochs a CNN tail trains for; the count used is chosen on out-of-fold AUC.
    epochs: int = 6
    batch_size: int = 64
    seed: int = 0
    #: Folds of whole source groups over the pooled train and calib splits.
    folds: int = 5
    #: Tiles per image side for the whole-image CNN (as at inference: ``detectors.learned.cnn``).
    max_per_side: int = MAX_PER_SIDE
    # Face crops as the face_cnn detector takes them (deeptrawl/detectors/learned/cnn.py).
    face_margin: float = FACE_MARGIN
    min_face_score: float = MIN_FACE_SCORE
    #: Also retrain without each fake kind and test on it (``training.json`` ``loko``).
    leave_one_kind_out: bool = False


@dataclass(frozen=True)
class Example:
    path: Path
    label: int
    kind: str
    split: str
    mask_path: Path | None
    #: The source group (``corpus build``'s split unit): one scene and everything made from it.
    group: str

    def rgb(self) -> np.ndarray:
        return np.asarray(Image.open(self.path).convert("RGB"))

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        if self.label == 0:
            return np.zeros(shape, bool)
        if self.mask_path is None:  # whole-image synthesis
            return np.ones(shape, bool)
        return np.asarray(Image.open(self.mask_path).convert("L")) > 127


def read_corpus(corpus: Path) -> list[Example]:
    table = pq.read_table(corpus / "manifest.parquet").to_pylist()
    return [
        Example(corpus / r["path"], int(r["label"]), r["kind"], r["split"],
                corpus / r["mask_path"] if r.get("mask_path") else None, r["source_group"])
        for r in sorted(table, key=lambda r: r["path"])
    ]


# --- caches --------------------------------------------------------------------------------


@dataclass
class TileSet:
    """Trunk outputs of every tile (or face crop) of a split, and whose they are."""

    features: torch.Tensor  # float16, one row per tile
    labels: np.ndarray      # per tile: 1, 0 or -1 (ignore)
    owner: np.ndarray       # per tile: index of its example in the split

    def subset(self, keep: np.ndarray) -> "TileSet":
        """The tiles of the examples where ``keep`` (a mask over examples) holds,
        owners renumbered as in ``SplitCache.subset``."""
        rows = keep[self.owner] if len(self.owner) else np.zeros(0, bool)
        renumber = np.cumsum(keep) - 1
        return TileSet(self.features[torch.from_numpy(rows)], self.labels[rows], renumber[self.owner[rows]])


@dataclass
class SplitCache:
    examples: list[Example]
    cnn: TileSet
    face: TileSet
    spectral: np.ndarray          # N x 62, NaN rows where the image has no spectrum
    forensic: list[dict[str, DetectorResult]] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return np.array([e.label for e in self.examples])

    @property
    def kinds(self) -> np.ndarray:
        return np.array([e.kind for e in self.examples])

    @property
    def groups(self) -> np.ndarray:
        return np.array([e.group for e in self.examples])

    def subset(self, keep: np.ndarray) -> "SplitCache":
        idx = np.flatnonzero(keep)
        return SplitCache([self.examples[i] for i in idx], self.cnn.subset(keep), self.face.subset(keep), self.spectral[idx],
                          [self.forensic[i] for i in idx] if self.forensic else [])


def group_folds(groups: np.ndarray, folds: int) -> np.ndarray:
    """Fold index per example, whole groups per fold: largest group first onto the fold
    with the fewest examples so far, so folds come out about equal (and deterministic)."""
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < folds:
        raise ConfigError(f"{folds} folds need at least {folds} source groups in train and calib; the corpus has {len(names)}")
    size = np.zeros(folds, int)
    fold_of = {}
    for i in sorted(range(len(names)), key=lambda i: (-counts[i], names[i])):
        fold_of[names[i]] = f = int(np.argmin(size))
        size[f] += counts[i]
    return np.array([fold_of[g] for g in groups])


def _trunk(net: SpatialNet, crops: list[np.ndarray]) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), 32):
            out.append(net.trunk(torch.from_numpy(np.stack(crops[i : i + 32]))).half())
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float16)


def _label(mask_region: np.ndarray) -> int:
    frac = float(mask_region.mean()) if mask_region.size else 0.0
    return 1 if frac >= 0.05 else (0 if frac == 0 else -1)


def cache_split(net: SpatialNet, examples: list[Example], settings: TrainSettings, progress: Progress, split: str,
                forensic: bool) -> SplitCache:
    """Trunk outputs, spectra and (if ``forensic``) the forensic results of ``examples``."""
    from deeptrawl.detectors.spectrum import FEATURE_NAMES, MIN_TILE, spectral_features
    from deeptrawl.faces import crop_box, crop_face, detect_faces

    tiles_, tile_labels, tile_owner = [], [], []
    faces_, face_labels, face_owner = [], [], []
    spectral = np.full((len(examples), len(FEATURE_NAMES)), np.nan, np.float32)
    for i, ex in enumerate(examples):
        progress(f"{split}: crops and spectra", i, len(examples))
        rgb = ex.rgb()
        mask = ex.mask(rgb.shape[:2])
        corners = tiles.positions(*rgb.shape[:2], max_per_side=settings.max_per_side)
        tiles_.extend(tiles.extract(rgb, corners))
        tile_labels.extend(tiles.tile_labels(mask, corners))
        tile_owner.extend([i] * len(corners))
        found = [f for f in detect_faces(rgb, max_side=FACE_SEARCH_SIDE) if f.score >= settings.min_face_score]
        if found:
            y0, x0, y1, x1 = crop_box(found[0], settings.face_margin)
            faces_.append(np.ascontiguousarray(crop_face(rgb, found[0], size=tiles.TILE, margin=settings.face_margin).transpose(2, 0, 1)))
            face_labels.append(_label(mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]))
            face_owner.append(i)
        if min(rgb.shape[:2]) >= MIN_TILE:
            f = spectral_features(rgb)
            if np.all(np.isfinite(f)):
                spectral[i] = f
    progress(f"{split}: crops and spectra", len(examples), len(examples))
    progress(f"{split}: trunk", 0, 1)
    cache = SplitCache(
        examples,
        TileSet(_trunk(net, tiles_), np.asarray(tile_labels, np.int8), np.asarray(tile_owner)),
        TileSet(_trunk(net, faces_), np.asarray(face_labels, np.int8), np.asarray(face_owner, dtype=int)),
        spectral,
    )
    progress(f"{split}: trunk", 1, 1)
    if forensic:
        cache.forensic = _forensic_results(examples, progress, split)
    return cache


def _forensic_results(examples: list[Example], progress: Progress, split: str) -> list[dict[str, DetectorResult]]:
    from deeptrawl import detectors
    from deeptrawl.evaluation.scoring import score_files

    rows = [{"path": str(e.path)} for e in examples]
    scored = score_files(rows, Path("/"), detectors=detectors.create(FORENSIC),
                         progress=lambda d, t: progress(f"{split}: forensic detectors", d, t))
    return [dict(s.results) for s in scored]


# --- the spatial CNNs ------------------------------------------------------------------------

#: Called after each epoch (or frequency check) with the model and its 0-based index.
AfterCheck = Callable[[nn.Module, int], None]


def _ignore(model: nn.Module, check: int) -> None:
    pass


def spatial_scores(net: SpatialNet, data: TileSet, n_examples: int) -> np.ndarray:
    """Per example: the detector's score (smooth max over its tiles), NaN without tiles."""
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net.head(net.tail(f.float())) for f in data.features.split(256)]).numpy() if len(data.features) else np.empty(0)
    out = np.full(n_examples, np.nan)
    for i in np.unique(data.owner):
        out[i] = 1 / (1 + np.exp(-tiles.pool_logits(logits[data.owner == i])))
    return out


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    seen = ~np.isnan(scores)
    if len(set(labels[seen].tolist())) < 2:
        return float("nan")
    return roc_auc(labels[seen], scores[seen])


def fit_spatial(train: TileSet, epochs: int, settings: TrainSettings, progress: Progress, task: str,
                after: AfterCheck = _ignore) -> SpatialNet:
    torch.manual_seed(settings.seed)
    net = SpatialNet()
    keep = train.labels >= 0
    x, y = train.features[torch.from_numpy(keep)], torch.from_numpy(train.labels[keep].astype(np.float32))
    if len(y) == 0 or y.min() == y.max():
        raise ConfigError(f"{task}: the training data needs both real and fake examples; use fewer --folds or a larger corpus")
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((y == 0).sum().item() / max((y == 1).sum().item(), 1)))
    optimiser = torch.optim.AdamW(
        [{"params": net.tail.parameters(), "lr": 3e-4}, {"params": net.fc.parameters(), "lr": 1e-3}], weight_decay=1e-4
    )
    generator = torch.Generator().manual_seed(settings.seed)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            optimiser.zero_grad()
            loss_fn(net.head(net.tail(x[idx].float())), y[idx]).backward()
            optimiser.step()
        progress(task, epoch + 1, epochs)
        after(net, epoch)
    return net.eval()


# --- the frequency model ---------------------------------------------------------------------


def frequency_scores(net: FrequencyNet, spectral: np.ndarray) -> np.ndarray:
    out = np.full(len(spectral), np.nan)
    ok = ~np.isnan(spectral).any(1)
    if ok.any():
        with torch.no_grad():
            out[ok] = torch.sigmoid(net(torch.from_numpy(spectral[ok]))).numpy()
    return out


def fit_frequency(x: np.ndarray, y: np.ndarray, checks: int, settings: TrainSettings, after: AfterCheck = _ignore) -> FrequencyNet:
    """Full-batch training (at most a few thousand rows of 62 features) for
    ``checks * FREQUENCY_CHECK`` steps, calling ``after`` every ``FREQUENCY_CHECK``."""
    torch.manual_seed(settings.seed)
    ok = ~np.isnan(x).any(1)
    tx, ty = torch.from_numpy(x[ok]), torch.from_numpy(y[ok].astype(np.float32))
    net = FrequencyNet(x.shape[1])
    net.mean.copy_(tx.mean(0))
    net.std.copy_(tx.std(0).clamp_min(1e-6))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(float((ty == 0).sum() / max((ty == 1).sum(), 1))))
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    for step in range(checks * FREQUENCY_CHECK):
        net.train()
        optimiser.zero_grad()
        loss_fn(net(tx), ty).backward()
        optimiser.step()
        if (step + 1) % FREQUENCY_CHECK == 0:
            net.eval()
            after(net, step // FREQUENCY_CHECK)
    return net.eval()


# --- cross-fitting ---------------------------------------------------------------------------


def _checks(name: str, settings: TrainSettings) -> int:
    return FREQUENCY_STEPS // FREQUENCY_CHECK if name == "frequency" else settings.epochs


def _fit(name: str, cache: SplitCache, checks: int, settings: TrainSettings, progress: Progress, task: str,
         after: AfterCheck = _ignore) -> nn.Module:
    if name == "frequency":
        return fit_frequency(cache.spectral, cache.labels, checks, settings, after)
    return fit_spatial(cache.cnn if name == "cnn" else cache.face, checks, settings, progress, task, after)


def _scores(name: str, model: nn.Module, cache: SplitCache) -> np.ndarray:
    return learned_scores({name: model}, cache)[name]


def cross_fit(name: str, cache: SplitCache, fold: np.ndarray, settings: TrainSettings, progress: Progress,
              tag: str = "") -> tuple[np.ndarray, int, dict]:
    """Train ``name`` once per fold without it, scoring the fold after every check.
    Returns the OOF scores at the check with the best pooled OOF AUC, how many checks
    that is, and the metrics."""
    checks = _checks(name, settings)
    oof = np.full((checks, len(cache.examples)), np.nan)
    # Each fold's subsets copy tile features: keep only the ones this network trains on.
    cache = replace(cache, cnn=cache.cnn if name == "cnn" else cache.cnn.subset(np.zeros(len(cache.examples), bool)),
                    face=cache.face if name == "face_cnn" else cache.face.subset(np.zeros(len(cache.examples), bool)))
    for f in range(settings.folds):
        held = fold == f
        held_cache = cache.subset(held)

        def record(model: nn.Module, check: int) -> None:
            oof[check, held] = _scores(name, model, held_cache)

        _fit(name, cache.subset(~held), checks, settings, progress, f"{name}: fold {f + 1}/{settings.folds}{tag}", record)
    history = [_auc(cache.labels, scores) for scores in oof]
    best = int(np.nanargmax(history)) if not np.all(np.isnan(history)) else checks - 1
    unit, per = ("steps", FREQUENCY_CHECK) if name == "frequency" else ("epochs", 1)
    return oof[best], best + 1, {"oof_auc": round(history[best], 4), unit: (best + 1) * per,
                       "oof_auc_history": [round(a, 4) for a in history]}


# --- fitting everything on the caches --------------------------------------------------------


@dataclass
class Fitted:
    nets: dict[str, nn.Module]
    metrics: dict[str, dict]
    fusion: object | None = None


def _results(cache: SplitCache, scores: Mapping[str, np.ndarray]) -> list[dict[str, DetectorResult]]:
    """Per example: the forensic results plus the learned detectors' scores."""
    rows = []
    for i in range(len(cache.examples)):
        row = dict(cache.forensic[i]) if cache.forensic else {}
        for name, values in scores.items():
            row[name] = DetectorResult(score=float(values[i])) if not np.isnan(values[i]) else DetectorResult.abstain("no input")
        rows.append(row)
    return rows


def learned_scores(nets: Mapping[str, nn.Module], cache: SplitCache) -> dict[str, np.ndarray]:
    n = len(cache.examples)
    out = {}
    if "cnn" in nets:
        out["cnn"] = spatial_scores(nets["cnn"], cache.cnn, n)
    if "face_cnn" in nets:
        out["face_cnn"] = spatial_scores(nets["face_cnn"], cache.face, n)
    if "frequency" in nets:
        out["frequency"] = frequency_scores(nets["frequency"], cache.spectral)
    return out


def fit_all(pool: SplitCache, settings: TrainSettings, progress: Progress, only: Sequence[str],
            *, without: str | None = None, recipe: str = "") -> Fitted:
    """Fit the named models on ``pool`` (minus the kind ``without``); see the module docstring.

    The fusion needs every network's OOF scores, so refitting it alone (after a forensic
    detector changed, say) cross-fits all three networks again but writes none of them."""
    from deeptrawl.fusion import FusionModel

    if without:  # a subset copies every tile's trunk output: only when something is left out
        pool = pool.subset(pool.kinds != without)
    fold = group_folds(pool.groups, settings.folds)
    tag = f" (without {without})" if without else ""
    fitted = Fitted({}, {})
    oof = {}
    for name in LEARNED:
        if name not in only and "fusion" not in only:
            continue
        oof[name], checks, metrics = cross_fit(name, pool, fold, settings, progress, tag)
        if name in only:
            fitted.nets[name] = _fit(name, pool, checks, settings, progress, f"{name}: all folds{tag}")
            fitted.metrics[name] = metrics
    if "fusion" in only:
        rows, labels = _results(pool, oof), list(pool.labels.astype(bool))
        candidates = [FusionModel.fit(rows, labels, fold_of=fold, l2=l2, seed=settings.seed, data=recipe) for l2 in FUSION_L2]
        fitted.fusion = max(candidates, key=lambda m: m.training.cv_auc)  # the first of equals: the least penalised
    return fitted


def _fused(fitted: Fitted, cache: SplitCache) -> np.ndarray:
    from deeptrawl.verdict import fuse

    scores = [fuse(r, fitted.fusion).score for r in _results(cache, learned_scores(fitted.nets, cache))]
    return np.array([np.nan if s is None else s for s in scores])


def leave_one_kind_out(pool: SplitCache, test: SplitCache, settings: TrainSettings, progress: Progress) -> dict[str, float]:
    """For each fake kind: retrain every model without it, then AUC of that kind vs the reals of ``test``."""
    out = {}
    for kind in sorted(set(pool.kinds.tolist()) - {"real"}):
        fitted = fit_all(pool, settings, progress, MODELS, without=kind)
        scores = _fused(fitted, test)
        rows = (test.kinds == kind) | (test.labels == 0)
        out[kind] = round(_auc(test.labels[rows], scores[rows]), 4)
    return out


def train(settings: TrainSettings, progress: Progress = _quiet, only: Sequence[str] = MODELS) -> dict:
    """Train the named models, write their weights and ``training.json``; return the metrics."""
    torch.manual_seed(settings.seed)
    examples = read_corpus(settings.corpus)
    net = SpatialNet()
    forensic = "fusion" in only or settings.leave_one_kind_out
    pool = cache_split(net, [e for e in examples if e.split in ("train", "calib")], settings, progress, "train+calib", forensic)
    recipe = _corpus_recipe(settings.corpus)
    fitted = fit_all(pool, settings, progress, only, recipe=json.dumps(recipe, sort_keys=True))
    report: dict = {"corpus": recipe, "settings": {"epochs": settings.epochs, "folds": settings.folds, "seed": settings.seed}}
    for name, model in fitted.nets.items():
        state = model.trained_state() if isinstance(model, SpatialNet) else model.state_dict()
        report[name] = fitted.metrics[name] | {"sha256": weights.save_state(f"{name}.pt", state, settings.out)}
    if fitted.fusion is not None:
        from deeptrawl.fusion import MODEL_FILE

        model = fitted.fusion
        t = model.training
        report["fusion"] = {"version": model.version, "cv_auc": t.cv_auc, "oof_ece": t.oof_ece, "l2": t.l2, "n_real": t.n_real,
                            "n_synthetic": t.n_synthetic, "t_synthetic": model.t_synthetic, "t_authentic": model.t_authentic,
                            "weights": dict(zip(model.feature_names, np.asarray(model.weights).reshape(-1, 2)[:, 0].round(3).tolist())),
                            "sha256": weights.save(MODEL_FILE, model.to_json().encode(), settings.out)}
    if settings.leave_one_kind_out:
        test = cache_split(net, [e for e in examples if e.split == "test"], settings, progress, "test", forensic=True)
        report["loko"] = leave_one_kind_out(pool, test, settings, progress)
    previous = settings.out / "training.json"
    merged = (json.loads(previous.read_text()) if previous.exists() else {}) | report
    previous.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return report


def _corpus_recipe(corpus: Path) -> dict:
    recipe = corpus / "corpus.json"
    return json.loads(recipe.read_text()) if recipe.exists() else {"path": str(corpus)}
