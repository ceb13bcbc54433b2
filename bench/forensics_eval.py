"""Evaluate the image forensics suite on seeded ground truth made from shipped photos.

    .venv/bin/python bench/forensics_eval.py                 # >= 300 images, Markdown tables
    .venv/bin/python bench/forensics_eval.py --per-corpus 10 # quick
    .venv/bin/python bench/forensics_eval.py --json out.json

Every ``deeptrawl/samples/corpus_*.py`` module contributes labelled cases (real and
manipulated, with masks where the manipulation is localised). Every registered detector
runs on every case. Printed:

* per detector and corpus: ROC AUC (manipulated vs real of that corpus) and the share of
  each kind flagged at score >= 0.5 (for real kinds: the false-positive rate);
* localisation: for manipulated cases with a mask and a detector heatmap, IoU and pixel
  F1 of the heatmap thresholded at 0.5 (target and source masks united where both exist);
* cost: seconds per detector on a 12 MP JPEG on one core (minimum of 3 runs) and per MP.
"""

from __future__ import annotations

import os

# One core, as the cost target states; must be set before numpy/OpenCV load.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import pkgutil  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import deeptrawl.samples  # noqa: E402
from deeptrawl import detectors  # noqa: E402
from deeptrawl.config import Limits, VerdictRule  # noqa: E402
from deeptrawl.media.probe import load_item  # noqa: E402
from deeptrawl.metrics import iou, pixel_f1, roc_auc  # noqa: E402
from deeptrawl.samples import media  # noqa: E402
from deeptrawl.verdict import fuse  # noqa: E402

try:
    import cv2

    cv2.setNumThreads(1)
except ImportError:  # pragma: no cover
    pass


def corpora() -> dict[str, object]:
    found = {}
    for info in pkgutil.iter_modules(deeptrawl.samples.__path__):
        if info.name.startswith("corpus_"):
            found[info.name.removeprefix("corpus_")] = importlib.import_module(f"deeptrawl.samples.{info.name}")
    return found


def evaluate(per_corpus: int, seed: int) -> dict:
    dets = detectors.create()
    for d in dets:
        d.setup()
    rule = VerdictRule()
    # "fused" is the verdict rule over all detectors (deeptrawl/verdict.py).
    results: dict = {"corpora": {}, "detectors": [d.name for d in dets] + ["fused"]}
    limits = Limits()
    for corpus_name, module in corpora().items():
        started = time.perf_counter()
        cases = module.cases(per_corpus, seed=seed)
        scores: dict[str, list[float]] = defaultdict(list)
        by_kind: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        loc: dict[str, list[tuple[float, float]]] = defaultdict(list)
        labels = []
        for case in cases:
            item = load_item(case.name, case.data, limits)
            labels.append(case.manipulated)
            truth = case.mask
            if truth is not None and case.source_mask is not None:
                truth = truth | case.source_mask
            per_detector = {}
            for d in dets:
                r = d.analyze([item])[0] if d.accepts(item) else None
                if r is not None:
                    per_detector[d.name] = r
                score = 0.0 if r is None or r.score is None else float(r.score)  # abstain = no evidence
                scores[d.name].append(score)
                by_kind[d.name][case.kind].append(score)
                heat = next((e.pixels() for e in (r.evidence if r else ()) if e.kind == "heatmap"), None)
                if case.manipulated and truth is not None and heat is not None and heat.shape == truth.shape:
                    predicted = heat >= 0.5
                    loc[d.name].append((iou(predicted, truth), pixel_f1(predicted, truth)))
            verdict = fuse(per_detector, rule)
            fused = 0.0 if verdict.score is None else verdict.score
            scores["fused"].append(fused)
            by_kind["fused"][case.kind].append(fused)
        summary = {"n": len(cases), "manipulated": int(sum(labels)), "seconds": round(time.perf_counter() - started, 1)}
        for name in results["detectors"]:
            entry = {}
            if 0 < sum(labels) < len(labels):
                entry["auc"] = round(roc_auc(labels, scores[name]), 3)
            entry["flagged_by_kind"] = {
                k: round(float(np.mean(np.asarray(v) >= 0.5)), 3) for k, v in sorted(by_kind[name].items())
            }
            if loc[name]:
                ious = np.array([x[0] for x in loc[name]])
                entry["localisation"] = {
                    "cases": len(ious),
                    "mean_iou": round(float(ious.mean()), 3),
                    "iou_ge_0.3": round(float(np.mean(ious >= 0.3)), 3),
                    "iou_ge_0.5": round(float(np.mean(ious >= 0.5)), 3),
                    "mean_f1": round(float(np.mean([x[1] for x in loc[name]])), 3),
                }
            summary[name] = entry
        results["corpora"][corpus_name] = summary
    return results


def cost_12mp(repeats: int = 3) -> dict[str, float]:
    image = Image.fromarray(media.photo("astronaut")).resize((4000, 3000), Image.LANCZOS)
    rng = np.random.default_rng(0)
    noisy = np.clip(np.asarray(image, np.float32) + rng.normal(0, 2, (3000, 4000, 3)), 0, 255).astype(np.uint8)
    data = media.encode(noisy, quality=90)
    item = load_item("12mp.jpg", data, Limits())
    item.rgb  # decoded once, shared by all detectors as in a scan
    item.luma  # ELA's Y plane (libjpeg's own, decoded once more without colour), likewise shared
    costs = {}
    for d in detectors.create():
        d.setup()
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            d.analyze([item])
            best = min(best, time.perf_counter() - started)
        costs[d.name] = round(best, 3)
    started = time.perf_counter()
    load_item("12mp.jpg", data, Limits()).rgb
    costs["(decode)"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    load_item("12mp.jpg", data, Limits(), colour=False).luma  # a scan whose detectors all read luma (ELA)
    costs["(decode, luma only)"] = round(time.perf_counter() - started, 3)
    return costs


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}, one thread per library"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-corpus", type=int, default=60, help="cases per corpus module (default 60)")
    parser.add_argument("--seed", type=int, default=1000, help="corpus seed (tests use small seeds; default 1000)")
    parser.add_argument("--json", dest="json_path", help="also write the results as JSON here")
    parser.add_argument("--no-cost", action="store_true", help="skip the 12 MP cost measurement")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    results = evaluate(args.per_corpus, args.seed)
    total = sum(c["n"] for c in results["corpora"].values())
    print(f"\n{total} images from {len(results['corpora'])} corpora, seed {args.seed}\n")
    names = results["detectors"]
    print("| corpus | n | " + " | ".join(f"{n} AUC" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for corpus, s in results["corpora"].items():
        print(f"| {corpus} | {s['n']} | " + " | ".join(str(s[n].get("auc", "-")) for n in names) + " |")
    print("\nShare flagged (score >= 0.5) per kind; for real kinds this is the false-positive rate:\n")
    for corpus, s in results["corpora"].items():
        for n in names:
            flagged = ", ".join(f"{k} {v:.2f}" for k, v in s[n]["flagged_by_kind"].items())
            loc = s[n].get("localisation")
            loc_text = (
                f"; localisation over {loc['cases']}: mean IoU {loc['mean_iou']}, IoU>=0.3 {loc['iou_ge_0.3']}, "
                f"F1 {loc['mean_f1']}"
                if loc
                else ""
            )
            print(f"- {corpus} / {n}: {flagged}{loc_text}")
    if not args.no_cost:
        costs = cost_12mp()
        results["cost_12mp_s"] = costs
        suite = sum(v for k, v in costs.items() if not k.startswith("("))
        print("\nCost on a 12 MP JPEG, one core (min of 3):\n")
        print("| detector | s | s/MP |\n|---|---|---|")
        for name, seconds in costs.items():
            print(f"| {name} | {seconds:.3f} | {seconds / 12:.4f} |")
        print(f"| whole suite | {suite:.3f} | {suite / 12:.4f} |")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
