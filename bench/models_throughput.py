#!/usr/bin/env python
"""CPU throughput of each learned network: PyTorch eager vs ONNX Runtime, batch 1 and 32.

Every number is a ratio against a bound measured in the same run: the decode-only rate
(read + decode the same JPEG tiles, no network), so the table says how many times slower
than decoding each model is, and how much ONNX Runtime gains over PyTorch.

Usage:
  python bench/models_throughput.py            # all models, batch 1 and 32
  python bench/models_throughput.py --json
  python bench/models_throughput.py --threads 1
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deeptrawl import models  # noqa: E402
from deeptrawl.models.export import SPECS, LogitColumn, example_input, export_onnx, load_exported  # noqa: E402
from deeptrawl.samples import media  # noqa: E402


def rate(fn, n_items: int, min_seconds: float = 2.0) -> float:
    """Items per second, repeated until ``min_seconds`` have passed (after one warm-up)."""
    fn()
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < min_seconds or done == 0:
        fn()
        done += n_items
    return done / elapsed


def decode_rate() -> float:
    """JPEG 224x224 tiles decoded to uint8 NCHW: the floor any image model pays."""
    photo = media.rgb_photo("astronaut")
    blobs = [media.encode(photo[y : y + 224, x : x + 224], quality=90) for y in (0, 100, 200) for x in (0, 100, 200)]

    def run():
        for b in blobs:
            np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).transpose(2, 0, 1)

    return rate(run, len(blobs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    floor = decode_rate()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in SPECS.items():
            net = models.load(name)
            served = LogitColumn(net).eval()
            onnx_path = export_onnx(served, example_input(spec.input, 2), Path(tmp) / f"{name}.onnx", spec.input.name, spec.output.name)
            onnx = load_exported(onnx_path)
            for batch in args.batches:
                x = example_input(spec.input, batch)
                with torch.no_grad():
                    torch_rate = rate(lambda: served(x), batch)
                ort_rate = rate(lambda: onnx(x.numpy()), batch)
                rows.append({"model": name, "batch": batch, "torch_per_s": round(torch_rate, 1),
                             "onnxruntime_per_s": round(ort_rate, 1), "ort_over_torch": round(ort_rate / torch_rate, 2),
                             "torch_over_decode": round(torch_rate / floor, 4), "ort_over_decode": round(ort_rate / floor, 4)})
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads={args.threads}",
              "decode_tiles_per_s": round(floor, 1), "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}   decode-only bound: {floor:.0f} tiles/s")
    print(f"{'model':<10} {'batch':>5} {'torch/s':>9} {'ORT/s':>9} {'ORT/torch':>9} {'torch/decode':>12} {'ORT/decode':>10}")
    for r in rows:
        print(f"{r['model']:<10} {r['batch']:>5} {r['torch_per_s']:>9} {r['onnxruntime_per_s']:>9} {r['ort_over_torch']:>9} "
              f"{r['torch_over_decode']:>12} {r['ort_over_decode']:>10}")


if __name__ == "__main__":
    main()
