"""Landmark Breaker Table IV / Fig. 3 on our extractors: protected images re-compressed (JPEG Q75 /
Q50, video codecs C = MPEG-4 and C2 = MPEG-4 then H.264, or any transform spec) before evaluation.

Measurement choice: NME compares each extractor on the *clean, untransformed* image (the ground
truth) with the same extractor on the *transformed protected* image, i.e. what a DeepFake maker who
downloads the re-compressed photo gets against what the original would have given them; SSIM_I and
mask-SSIM likewise compare the transformed protected image with the clean original (the paper's
convention: compression removes some perturbation and can raise SSIM_I). The optional row "clean
(transform only)" measures the transformed *clean* image against the clean one: the NME the
transform causes by itself, the floor under every other row of that column.
"""
from __future__ import annotations

import numpy as np

from faceshield.benchmark.config import BenchConfig, row_pairs, source_name
from faceshield.benchmark.context import BenchContext
from faceshield.benchmark.measure import METRIC_COLUMNS, NME_INTRO, VISIBILITY_HEADER, Accumulator, attack_settings, visibility_cells, is_white_box, nme_cell, nme_columns, nme_header
from faceshield.benchmark.report import TableResult, count, md_table
from faceshield.benchmark.sources import BenchImage
from faceshield.core.errors import WeightsNotFoundError
from faceshield.pipeline import evaluate_pair
from faceshield.defenses.purifiers import create_purifier

CLEAN = "clean (transform only)"


def transform_label(spec: str) -> str:
    return "none" if spec == "identity" else spec


def run_table4(ctx: BenchContext, cfg: BenchConfig, opts: dict, images: list[BenchImage], notes: list[str]) -> TableResult:
    evaluators, n2 = ctx.evaluators(opts["extractors"] if opts["extractors"] is not None else cfg.extractors)
    notes += n2
    names = [e.name for e in evaluators]
    transforms = {transform_label(s): create_purifier(s) for s in opts["transforms"]}
    sources, rows = opts["sources"], opts["rows"]
    ctx.progress.start("table4", len(row_pairs(rows, sources)) * len(images) + (len(images) if opts["clean_baseline"] else 0))
    records, per_image = [], []
    for src, row in row_pairs(rows, sources):
        pc = row.protect_config(cfg.attack, src, cfg.seed)
        accs = {t: Accumulator(names) for t in transforms}
        for img, p in ctx.protections(images, pc, f"{row.label} made on {source_name(src)}", notes):
            for label, t in transforms.items():
                if p is None:
                    accs[label].no_face += 1
                    continue
                ev = evaluate_pair(img.rgb, t.apply(p.rgb), evaluators, p.face_boxes)
                accs[label].add(ev, p.seconds)
                per_image.append({"transform": label, "perturbation": row.label, "made_on": source_name(src), "image": img.name, **ev.to_dict()})
        for label in transforms:
            records.append({"transform": label, "perturbation": row.label, "method": row.method, "made_on": source_name(src), **accs[label].record()})
    if opts["clean_baseline"]:
        targets = sorted({n for s in sources for n in s})
        accs = {t: Accumulator(names) for t in transforms}
        for img in images:
            boxes = []
            for n in targets:
                try:
                    boxes += [f.box for f in ctx.extractor(n).detect(img.rgb)]
                except (WeightsNotFoundError, ImportError):
                    pass
            for label, t in transforms.items():
                ev = evaluate_pair(img.rgb, t.apply(img.rgb), evaluators, boxes)
                accs[label].add(ev)
                per_image.append({"transform": label, "perturbation": CLEAN, "made_on": "", "image": img.name, **ev.to_dict()})
            ctx.progress.advance()
        for label in transforms:
            records.append({"transform": label, "perturbation": CLEAN, "method": "", "made_on": "", **accs[label].record()})
    order = {t: i for i, t in enumerate(transforms)}
    records.sort(key=lambda r: order[r["transform"]])  # stable: grouped by transform, rows in config order
    md_rows = [[r["transform"], r["perturbation"], r["made_on"] or "-", *(nme_cell(r, e.name, is_white_box(e, r["made_on"])) for e in evaluators), r["ssim_i"], r["mask_ssim"],
                *visibility_cells(r)] for r in records]
    body = md_table(["transform", "perturbation", "made on", *nme_header(evaluators), "SSIM_I", "mask-SSIM", *VISIBILITY_HEADER], md_rows)
    intro = (f"{NME_INTRO} Protected images pass through each transform (real codecs on the 8-bit image) before "
             "evaluation: NME compares the extractor on the clean, untransformed image with the same extractor on the "
             "transformed protected image; SSIM_I / mask-SSIM compare the transformed protected image with the clean one. "
             f"'{CLEAN}': the transformed clean image against the clean one, the transform's own effect. **Bold**: white-box.")
    settings = {**attack_settings(cfg.attack, cfg.seed, opts["rows"]), "transforms": {transform_label(s): create_purifier(s).spec for s in opts["transforms"]}}
    return TableResult(
        name="table4",
        title=f"Table IV on our extractors: robustness to image and video compression ({count(images)})",
        intro=intro, settings=settings,
        columns=["transform", "perturbation", "method", "made_on", *nme_columns(names), *METRIC_COLUMNS],
        rows=records, body=body, per_image=per_image, images=[i.name for i in images], notes=notes,
        figures={"table4.png": _figure(records, list(transforms), names)} if records and names else {},
    )


def _figure(records: list[dict], transforms: list[str], names: list[str]):
    """Fig. 3 style: one panel per extractor (NME after each transform) and one for SSIM_I; a line per row."""
    from matplotlib.figure import Figure

    panels = [(f"nme_{n}", f"NME {n}") for n in names] + [("ssim_i", "SSIM_I")]
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * nrows))
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    lines: dict[tuple[str, str], dict[str, float | None]] = {}
    for r in records:
        lines.setdefault((r["perturbation"], r["made_on"]), {})[r["transform"]] = r
    x = np.arange(len(transforms))
    for ax, (key, title) in zip(axes, panels):
        for (label, src), by_t in lines.items():
            y = [np.nan if by_t.get(t, {}).get(key) is None else by_t[t][key] for t in transforms]
            style = dict(color="0.5", linestyle="--") if label == CLEAN else {}
            ax.plot(x, y, marker="o", label=label if not src else f"{label} on {src}", **style)
        ax.set_xticks(x, transforms)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle("NME and SSIM_I after each transform")
    fig.tight_layout()
    return fig
