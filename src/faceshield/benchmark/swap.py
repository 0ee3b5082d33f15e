"""Landmark Breaker's SSIM_W columns (Tables I / II) through a real face swap: for each perturbation
made on each source extractor, the DeepFake is aligned by each aligner and compared with the DeepFake
of the clean input.

Per (perturbation, source, aligner): SSIM_W (mask-SSIM between the swap of the protected input and
the swap of the clean input, over the bounding box of both swaps' blend masks), the aligner's NME and
the failure rate: faces the swap tool loses (no detection) or drops (faceswap-style plausibility
filter). A failed face counts with the unswapped protected image in SSIM_W. Faces the aligner cannot
swap even on the clean image are left out (``skipped``). SSIM_I is the input's.
"""
from __future__ import annotations

import numpy as np

from faceshield.benchmark.config import BenchConfig, BenchConfigError, expand_path, row_pairs, source_name
from faceshield.benchmark.context import BenchContext, CachedSwapper
from faceshield.benchmark.measure import attack_settings
from faceshield.benchmark.report import TableResult, count, fmt, md_table
from faceshield.benchmark.sources import BenchImage
from faceshield.core.errors import WeightsNotFoundError

INTRO = " ".join(__doc__.split("\n\n")[1].split())
COLUMNS = ["perturbation", "made_on", "aligner", "ssim_i", "ssimulacra2_face", "ssim_w", "nme", "fail_rate", "failed", "faces", "skipped"]


def _mean(v) -> float | None:
    return round(float(np.mean(v)), 5) if v else None


def run_swap(ctx: BenchContext, cfg: BenchConfig, opts: dict, images: list[BenchImage], notes: list[str]) -> TableResult:
    from faceshield.deepfake import FaceSwapper, load_swap_model
    from faceshield.metrics.perceptual import face_value
    from faceshield.pipeline.swap import evaluate_swap

    sources, rows = opts["sources"], opts["rows"]
    settings = attack_settings(cfg.attack, cfg.seed, rows)
    empty = TableResult(name="swap", title="SSIM_W through a face swap: not run", intro=INTRO, settings=settings, columns=COLUMNS, rows=[], body="Not run: see the notes.", notes=notes,
                        images=[i.name for i in images])
    try:
        model = load_swap_model(None if opts["swap_model"] is None else expand_path(opts["swap_model"]))
    except (WeightsNotFoundError, FileNotFoundError) as e:  # only the shipped / $FACESHIELD_SWAP_MODEL one can be missing here
        notes.append(f"swap table skipped: {e}; or give the config a tables.swap.swap_model")
        return empty
    swappers = {}
    for a in opts["aligners"]:
        try:
            swappers[a] = CachedSwapper(FaceSwapper(model, extractor=ctx.extractor(a).extractor, identity=opts["identity"]))
        except (WeightsNotFoundError, ImportError) as e:
            notes.append(f"aligner {a} skipped: {e}")
        except ValueError as e:
            raise BenchConfigError(f"tables.swap.identity: {e}") from None
    ctx.progress.start("swap", len(row_pairs(rows, sources)) * len(images))
    cells: dict[tuple[str, str, str], dict] = {}
    per_image = []
    for src, row in row_pairs(rows, sources):
        pc = row.protect_config(cfg.attack, src, cfg.seed)
        for img, p in ctx.protections(images, pc, f"{row.label} made on {source_name(src)}", notes):
            s2 = None if p is None else face_value("ssimulacra2", img.rgb, p.rgb, p.face_boxes)
            for a, sw in swappers.items():
                c = cells.setdefault((row.label, source_name(src), a), {"ssim_i": [], "s2": [], "ssim_w": [], "nme": [], "failed": 0, "faces": 0, "skipped": 0})
                if p is None:
                    c["skipped"] += 1
                    continue
                ev, _, _ = evaluate_swap(img.rgb, p.rgb, sw)
                if ev.ssim_w is None or ev.dropped_clean:  # no swap of the clean image to compare with
                    c["skipped"] += 1
                    continue
                c["faces"] += 1
                c["ssim_i"].append(ev.ssim_i)
                if s2 is not None:
                    c["s2"].append(s2)
                c["ssim_w"].append(ev.ssim_w)
                c["failed"] += ev.failed
                if ev.nme is not None:
                    c["nme"].append(ev.nme)
                per_image.append({"perturbation": row.label, "made_on": source_name(src), "image": img.name, **ev.to_dict()})
    records = [{"perturbation": lab, "made_on": src, "aligner": a, "ssim_i": _mean(c["ssim_i"]), "ssimulacra2_face": _mean(c["s2"]),
                "ssim_w": _mean(c["ssim_w"]), "nme": _mean(c["nme"]),
                "fail_rate": round(c["failed"] / c["faces"], 5) if c["faces"] else None, "failed": c["failed"], "faces": c["faces"], "skipped": c["skipped"]}
               for (lab, src, a), c in cells.items()]
    aligners = list(swappers)
    by = {(r["perturbation"], r["made_on"], r["aligner"]): r for r in records}
    pairs = list(dict.fromkeys((r["perturbation"], r["made_on"]) for r in records))
    t1 = []
    for lab, src in pairs:
        rs = [by.get((lab, src, a)) for a in aligners]
        ssim_i = next((x["ssim_i"] for x in rs if x and x["ssim_i"] is not None), None)
        s2 = next((x["ssimulacra2_face"] for x in rs if x and x["ssimulacra2_face"] is not None), None)
        t1.append([lab, src, *("-" if x is None else f"{fmt(x['ssim_w'])} / {fmt(x['fail_rate'])}" for x in rs), ssim_i, fmt(s2, 1)])
    t2 = [[lab, src, *(fmt((by.get((lab, src, a)) or {}).get("nme")) for a in aligners)] for lab, src in pairs]
    body = "\n".join([
        md_table(["perturbation", "made on", *(f"SSIM_W / fail ({a})" for a in aligners), "SSIM_I", "SSIMULACRA2 face"], t1), "",
        "NME of the aligner (fraction of its normaliser) per cell:", "",
        md_table(["perturbation", "made on", *aligners], t2),
    ])
    settings = {**settings, "swap_model": model.config.to_dict(), "identity": next(iter(swappers.values())).swapper.identity if swappers else None,
                "filter": "faceswap defaults"}
    return TableResult(
        name="swap",
        title=f"SSIM_W on our extractors: Landmark Breaker through a face swap ({count(images)})",
        intro=INTRO, settings=settings,
        columns=COLUMNS,
        rows=records, body=body, per_image=per_image, images=[i.name for i in images], notes=notes,
    )
