"""Flag rates (score >= 0.5; abstentions count as not flagged) per (size, area share) for ELA 1.1.0 and 2.0.0."""
import json, sys
from collections import defaultdict
path = sys.argv[1] if len(sys.argv) > 1 else "ela-large.jsonl"
rows = [json.loads(l) for l in open(path)]
cells = defaultdict(list)
for r in rows:
    cells[(r["mp"], r["area"])].append(r)
sizes = sorted({r["mp"] for r in rows}); areas = sorted({r["area"] for r in rows})
flag = lambda s: s is not None and s >= 0.5
def rate(rs, key):
    k = sum(flag(r[key]) for r in rs); return f"{k}/{len(rs)} ({100*k/len(rs):.0f}%)"
print("| size | " + " | ".join("clean (FP)" if a == 0 else f"{a:.0%} pasted" for a in areas) + " |")
print("|---|" + "---|" * len(areas))
for mp in sizes:
    for key, v in (("s11", "1.1.0"), ("s20", "2.0.0")):
        print(f"| {mp:g} MP, ELA {v} | " + " | ".join(rate(cells[(mp, a)], key) for a in areas) + " |")
print()
print("all sizes:")
for key, v in (("s11", "1.1.0"), ("s20", "2.0.0")):
    print(f"  ELA {v}: " + ", ".join(f"{'clean' if a == 0 else f'{a:.0%}'} {rate([r for r in rows if r['area']==a], key)}" for a in areas))
print()
for mp in sizes:
    rs = [r for r in rows if r["mp"] == mp]
    m11 = sum(r["ms11"] for r in rs) / len(rs); m20 = sum(r["ms20"] for r in rs) / len(rs)
    ab11 = sum(r["s11"] is None for r in rs); ab20 = sum(r["s20"] is None for r in rs)
    print(f"{mp:g} MP: n={len(rs)} images; mean ms 1.1.0 {m11:.0f}, 2.0.0 {m20:.0f}; abstained 1.1.0 {ab11}, 2.0.0 {ab20}; "
          f"analysed share 1.1.0 {rs[0]['share11']} ({rs[0]['mode11']}), 2.0.0 {rs[0]['share20']} ({rs[0]['mode20']})")
print()
# by donor kind
for dk in ("raw", "jpeg"):
    rs = [r for r in rows if r["area"] > 0 and ((r["donor_q"] is None) == (dk == "raw"))]
    print(f"donor {dk}: " + ", ".join(f"{a:.0%}: 1.1 {rate([r for r in rs if r['area']==a],'s11')} / 2.0 {rate([r for r in rs if r['area']==a],'s20')}" for a in areas if a > 0))
print()
# disagreements on clean photos
for r in rows:
    if r["area"] == 0 and (flag(r["s11"]) or flag(r["s20"])):
        print("clean flagged:", r["name"], "1.1", r["s11"] and round(r["s11"], 3), "2.0", r["s20"] and round(r["s20"], 3), r["q20"])

print()
print("flagged AND heat inside mask > heat outside + 0.15 (evidence sits on the pasted region):")
loc = lambda r, v: flag(r["s" + v]) and r.get("heat_in" + v) is not None and r["heat_in" + v] > r["heat_out" + v] + 0.15
for mp in sizes:
    for v, name in (("11", "1.1.0"), ("20", "2.0.0")):
        parts = []
        for a in areas:
            if a == 0: continue
            rs = cells[(mp, a)]
            k = sum(loc(r, v) for r in rs)
            cov = sorted(r["cov" + v] for r in rs if r.get("cov" + v) is not None)
            med = cov[len(cov) // 2] if cov else float("nan")
            zero = sum(c == 0 for c in cov)
            parts.append(f"{a:.0%}: {k}/{len(rs)} (mask in tiles: median {med:.1%}, none {zero})")
        print(f"  {mp:g} MP {name}: " + "; ".join(parts))
