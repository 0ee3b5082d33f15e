"""Landmark Breaker Tables I-III on our extractors: perturbations made on white-box extractors
(``sources``), measured by every extractor, black-box ones included.

* ``table1``: LB made on each white-box extractor (rows) x every extractor (columns): the white-box
  diagonal and the weak transfer off it.
* ``table2``: Base1 (FGSM), Base2 (I-FGSM) and LB (MI-FGSM) made on one extractor (default MTCNN).
* ``table3``: the transfer strategies of Sec. IV-B (LB_trans = input diversity, LB_mix = alternating
  Base2 / LB) and ensembles (a source listing several extractors attacks them together).
"""
from __future__ import annotations

from faceshield.benchmark.config import BenchConfig, row_pairs, source_name
from faceshield.benchmark.context import BenchContext
from faceshield.benchmark.measure import METRIC_COLUMNS, NME_INTRO, VISIBILITY_HEADER, Accumulator, attack_settings, visibility_cells, is_white_box, nme_cell, nme_columns, nme_header
from faceshield.benchmark.report import TableResult, count, fmt, md_table
from faceshield.benchmark.sources import BenchImage
from faceshield.core.errors import WeightsNotFoundError
from faceshield.models import list_extractors
from faceshield.pipeline import evaluate_pair

TITLES = {
    "table1": "Table I on our extractors: LB made on each white-box extractor",
    "table2": "Table II on our extractors: Base1 / Base2 / LB made on {sources}",
    "table3": "Table III on our extractors: transfer (LB_trans, LB_mix, ensembles) to every extractor, black-box included",
}


def white_box_sources(ctx: BenchContext, notes: list[str]) -> list[tuple[str, ...]]:
    """Every registered white-box extractor whose weights load, as single-extractor sources."""
    out = []
    for n in list_extractors(white_box=True):
        try:
            ctx.extractor(n)
            out.append((n,))
        except (WeightsNotFoundError, ImportError) as e:
            notes.append(f"source {n} skipped: {e}")
    return out


def run_rows(ctx: BenchContext, cfg: BenchConfig, opts: dict, images: list[BenchImage], evaluators, notes: list[str], sources) -> tuple[list[dict], list[dict]]:
    """Protect every image with each (row, source) and aggregate the evaluations: CSV records and per-image records."""
    names = [e.name for e in evaluators]
    records, per_image = [], []
    for src, row in row_pairs(opts["rows"], sources):
        pc = row.protect_config(cfg.attack, src, cfg.seed)
        acc = Accumulator(names)
        for img, p in ctx.protections(images, pc, f"{row.label} made on {source_name(src)}", notes):
            if p is None:
                acc.no_face += 1
            else:
                ev = evaluate_pair(img.rgb, p.rgb, evaluators, p.face_boxes)
                acc.add(ev, p.seconds)
                per_image.append({"perturbation": row.label, "made_on": source_name(src), "image": img.name, "protect_seconds": round(p.seconds, 3), **ev.to_dict()})
        records.append({"perturbation": row.label, "method": row.method, "made_on": source_name(src), **acc.record()})
    return records, per_image


def run_nme_table(name: str, ctx: BenchContext, cfg: BenchConfig, opts: dict, images: list[BenchImage], notes: list[str]) -> TableResult:
    evaluators, n2 = ctx.evaluators(opts["extractors"] if opts["extractors"] is not None else cfg.extractors)
    notes += n2
    sources = opts["sources"] if opts["sources"] is not None else white_box_sources(ctx, notes)
    ctx.progress.start(name, len(row_pairs(opts["rows"], sources)) * len(images))
    records, per_image = run_rows(ctx, cfg, opts, images, evaluators, notes, sources)
    names = [e.name for e in evaluators]
    no_face = sum(r["no_face"] for r in records)
    if no_face:
        notes.append(f"{no_face} (image, row) pairs had no face for the source extractor and are left out")
    rows = [[r["perturbation"], r["made_on"], *(nme_cell(r, e.name, is_white_box(e, r["made_on"])) for e in evaluators), r["ssim_i"], r["mask_ssim"],
             *visibility_cells(r), fmt(r["seconds_per_image"], 2)] for r in records]
    body = md_table(["perturbation", "made on", *nme_header(evaluators), "SSIM_I", "mask-SSIM", *VISIBILITY_HEADER, "s/image"], rows)
    intro = NME_INTRO + (" **Bold**: white-box (the perturbation was made on that extractor, or on the one that runs the same network);"
                         " the other columns measure transfer.")
    return TableResult(
        name=name,
        title=TITLES[name].format(sources=", ".join(source_name(s) for s in sources)) + f" ({count(images)})",
        intro=intro,
        settings=attack_settings(cfg.attack, cfg.seed, opts["rows"]),
        columns=["perturbation", "method", "made_on", *nme_columns(names), *METRIC_COLUMNS],
        rows=records, body=body, per_image=per_image, images=[i.name for i in images], notes=notes,
    )
