"""ELA 1.1.0 vs 2.0.0 on large seeded photos (4/8/12 MP): splices of given area share + clean.

Per (size, host index i): rng = default_rng([seed, size_mp, i]).
Host: shipped photo PHOTOS[i % 7], Lanczos-upscaled to size MP (aspect kept), + N(0, 2) noise,
saved as JPEG at host_q in 60..85 (step 5) and decoded (host history).
Donor: another photo, upscaled to cover the host size (Lanczos, + its own noise), random crop
to the host's h x w; raw (50%) or saved as JPEG at donor_q in 60..95 with |donor_q - host_q| >= 10.
Final save: q in 90..95 (one per host, shared by the clean and all spliced variants).
Variants: clean (host history + final save, no paste) and a rectangle or ellipse (50/50,
aspect 2/3..3/2) of area share 1%, 3%, 10%, 25% at a random place, donor pixels pasted at
the same coordinates (as corpus_ela.py does).
Each variant: load_item -> both detectors' analyze_one (pixels pre-decoded, only analysis timed).

The baseline ELA is read from git (``--baseline``, default f019c3d: ELA 1.1.0). Results go to
``--out`` as JSON lines; ``bench/ela_large_summary.py OUT`` prints the tables of RESULTS.md.
    python bench/ela_large_photos.py --n 40 --seed 2026 --out /tmp/ela-large.jsonl   # ~12 min
"""
import argparse, importlib.util, json, math, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
from PIL import Image

from deeptrawl.config import Limits
from deeptrawl.media.probe import load_item
from deeptrawl.samples import media
import deeptrawl.detectors.registry as registry
from deeptrawl.detectors.ela import ElaDetector as Ela20
import deeptrawl.detectors.ela as ela20_mod

# The baseline ELA from git, imported under another name with register() made a no-op.
_BASELINE = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--baseline=")), "f019c3d")
_path = Path(tempfile.mkdtemp()) / "ela_baseline.py"
_path.write_text(subprocess.run(["git", "show", f"{_BASELINE}:deeptrawl/detectors/ela.py"], check=True,
                                capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent).stdout)
_orig = registry.register
registry.register = lambda cls: cls
spec = importlib.util.spec_from_file_location("ela_v11", _path)
ela_v11 = importlib.util.module_from_spec(spec); sys.modules["ela_v11"] = ela_v11
spec.loader.exec_module(ela_v11)
registry.register = _orig
Ela11 = ela_v11.ElaDetector
assert Ela11.version == "1.1.0" and Ela20.version == "2.0.0"

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "camera")
AREAS = (0.01, 0.03, 0.10, 0.25)
HOST_Q = tuple(range(60, 90, 5))
DONOR_Q = tuple(range(60, 100, 5))
SRC = {n: Image.fromarray(media.rgb_photo(n)) for n in PHOTOS}


def upscale(name, w, h, rng, cover=False):
    src = SRC[name]
    if cover:
        s = max(w / src.width, h / src.height)
        W, H = max(w, round(src.width * s)), max(h, round(src.height * s))
    else:
        W, H = w, h
    big = np.asarray(src.resize((W, H), Image.LANCZOS)).astype(np.float32)
    big += rng.standard_normal(big.shape, dtype=np.float32) * 2.0
    big = np.clip(big, 0, 255).astype(np.uint8)
    if cover:
        y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        big = np.ascontiguousarray(big[y:y + h, x:x + w])
    return big


def region(h, w, a, rng):
    aspect = math.exp(rng.uniform(math.log(2 / 3), math.log(1.5)))
    ellipse = rng.random() < 0.5
    px = a * h * w / (math.pi / 4 if ellipse else 1.0)
    ph, pw = min(h - 2, int(math.sqrt(px * aspect))), min(w - 2, int(math.sqrt(px / aspect)))
    y, x = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
    mask = np.zeros((h, w), bool)
    if not ellipse:
        mask[y:y + ph, x:x + pw] = True
    else:
        yy, xx = np.ogrid[:ph, :pw]
        mask[y:y + ph, x:x + pw] = ((yy + 0.5 - ph / 2) / (ph / 2)) ** 2 + ((xx + 0.5 - pw / 2) / (pw / 2)) ** 2 <= 1.0
    return mask, ("ellipse" if ellipse else "rect")


def run_det(det, item):
    t = time.perf_counter()
    r = det.analyze_one(item)
    ms = (time.perf_counter() - t) * 1000
    return r.score, ms, r.details, r


def localisation(mod, res, det, mask, h, w):
    """Share of the mask inside the analysed tiles, and mean heat in / out of the mask's blocks."""
    if mask is None or res.score is None:
        return None, None, None
    p = mod.plan(h, w, len(det["qualities"]))
    cov = np.zeros((h, w), bool)
    ty, tx = p.tile
    for y, x in p.origins:
        cov[y:y + ty, x:x + tx] = True
    covered = float((cov & mask).sum() / mask.sum())
    ev = [e for e in res.evidence if e.kind == "heatmap"]
    if not ev:
        return covered, None, None
    g = ev[0].array
    rows, cols = min(g.shape[0], h // 16), min(g.shape[1], w // 16)
    mb = mask[: rows * 16, : cols * 16].reshape(rows, 16, cols, 16).mean(axis=(1, 3)) > 0.5
    g = g[:rows, :cols]
    if not mb.any():
        return covered, None, None
    return covered, float(g[mb].mean()), float(g[~mb].mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="+", default=[4, 8, 12])
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default="ela-large.jsonl")
    ap.add_argument("--baseline", default="f019c3d", help="git revision of the ELA to compare with (use --baseline=REV)")
    ap.add_argument("--save-dir", default=None, help="also write the JPEGs here")
    args = ap.parse_args()
    d11, d20, limits = Ela11(), Ela20(), Limits()
    out = open(args.out, "a")
    for i in range(args.start, args.start + args.n):
        for mp in args.sizes:
            t0 = time.perf_counter()
            rng = np.random.default_rng([args.seed, int(mp * 10), i])
            hname = PHOTOS[i % len(PHOTOS)]
            dname = PHOTOS[(i + 1 + int(rng.integers(0, len(PHOTOS) - 1))) % len(PHOTOS)]
            src = SRC[hname]
            aspect = src.width / src.height
            h = round(math.sqrt(mp * 1e6 / aspect)); w = round(h * aspect)
            host_q = int(rng.choice(HOST_Q))
            host = media.decode(media.encode(upscale(hname, w, h, rng), quality=host_q)).copy()
            donor = upscale(dname, w, h, rng, cover=True)
            donor_q = None
            if rng.random() < 0.5:
                donor_q = int(rng.choice([q for q in DONOR_Q if abs(q - host_q) >= 10]))
                donor = media.decode(media.encode(donor, quality=donor_q))
            final_q = int(rng.integers(90, 96))
            variants = [(0.0, None, "clean")]
            for a in AREAS:
                m, shape = region(h, w, a, rng)
                variants.append((a, m, shape))
            for a, m, shape in variants:
                img = host if m is None else host.copy()
                if m is not None:
                    img[m] = donor[m]
                data = media.encode(img, quality=final_q)
                name = f"{mp:g}mp-{i:03d}-{hname}-q{host_q}+{dname}-{'raw' if donor_q is None else f'q{donor_q}'}-a{a:g}-{shape}-q{final_q}"
                if args.save_dir:
                    open(f"{args.save_dir}/{name}.jpg", "wb").write(data)
                item = load_item(name, data, limits)
                item.rgb; item.luma  # decode outside the timed part
                s11, ms11, det11, r11 = run_det(d11, item)
                s20, ms20, det20, r20 = run_det(d20, item)
                loc11 = localisation(ela_v11, r11, det11, m, h, w)
                loc20 = localisation(ela20_mod, r20, det20, m, h, w)
                rec = dict(name=name, mp=mp, w=w, h=h, i=i, host=hname, donor=dname, host_q=host_q,
                           donor_q=donor_q, final_q=final_q, area=a, true_area=(float(m.mean()) if m is not None else 0.0),
                           shape=shape, s11=s11, ms11=ms11, s20=s20, ms20=ms20,
                           mode11=det11.get("mode"), share11=det11.get("analysed_share"),
                           mode20=det20.get("mode"), share20=det20.get("analysed_share"),
                           q20=det20.get("qualities"), area20=det20.get("anomalous_area"), area11=det11.get("anomalous_area"),
                           cov11=loc11[0], heat_in11=loc11[1], heat_out11=loc11[2],
                           cov20=loc20[0], heat_in20=loc20[1], heat_out20=loc20[2])
                out.write(json.dumps(rec) + "\n"); out.flush()
            print(f"i={i} {mp:g}MP {w}x{h} host={hname} q{host_q} donor={dname} {donor_q} final q{final_q}: {time.perf_counter()-t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
