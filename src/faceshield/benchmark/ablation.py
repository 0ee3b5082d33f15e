"""Landmark Breaker Fig. 4 on our extractors: NME and SSIM_I as the step size alpha (0.5 .. 1.5
levels) and the iteration count T (14 .. 28) vary, one at a time, the other held at the run's
``attack`` setting. NME is measured by the extractors the perturbation is made on (white-box, as in
the paper) unless the table lists ``extractors``."""
from __future__ import annotations

from faceshield.benchmark.config import BenchConfig, RowSpec, default_label, source_name
from faceshield.benchmark.context import BenchContext
from faceshield.benchmark.measure import METRIC_COLUMNS, NME_INTRO, VISIBILITY_HEADER, Accumulator, attack_settings, visibility_cells, nme_cell, nme_columns
from faceshield.benchmark.report import TableResult, count, md_table
from faceshield.benchmark.sources import BenchImage
from faceshield.pipeline import evaluate_pair

PARAMETERS = {"alpha": "step size alpha (8-bit levels)", "steps": "iterations T"}


def run_ablation(ctx: BenchContext, cfg: BenchConfig, opts: dict, images: list[BenchImage], notes: list[str]) -> TableResult:
    row = RowSpec(default_label(opts["method"], {}), opts["method"])
    sweeps = {p: opts[p] for p in PARAMETERS if opts[p]}
    sources = opts["sources"]
    ctx.progress.start("ablation", len(sources) * sum(len(v) for v in sweeps.values()) * len(images))
    records, per_image, all_names = [], [], []
    for src in sources:
        evaluators, n2 = ctx.evaluators(opts["extractors"] if opts["extractors"] is not None else list(src))
        notes += [n for n in n2 if n not in notes]
        names = [e.name for e in evaluators]
        all_names += [n for n in names if n not in all_names]
        for param, values in sweeps.items():
            for v in values:
                pc = row.protect_config(cfg.attack, src, cfg.seed, **{param: v})
                acc = Accumulator(names)
                for img, p in ctx.protections(images, pc, f"{row.label} made on {source_name(src)}", notes):
                    if p is None:
                        acc.no_face += 1
                    else:
                        ev = evaluate_pair(img.rgb, p.rgb, evaluators, p.face_boxes)
                        acc.add(ev, p.seconds)
                        per_image.append({"parameter": param, "value": v, "made_on": source_name(src), "image": img.name, **ev.to_dict()})
                records.append({"parameter": param, "value": v, "perturbation": row.label, "made_on": source_name(src), **acc.record()})
    body = []
    for param, title in PARAMETERS.items():
        rs = [r for r in records if r["parameter"] == param]
        if not rs:
            continue
        body += [f"### {title}", "", md_table([param, "made on", *(f"NME {n}" for n in all_names), "SSIM_I", "mask-SSIM", *VISIBILITY_HEADER],
                                              [[f"{r['value']:g}", r["made_on"], *(nme_cell(r, n) for n in all_names), r["ssim_i"], r["mask_ssim"], *visibility_cells(r)]
                                               for r in rs]), ""]
    settings = {**attack_settings(cfg.attack, cfg.seed), "method": opts["method"], **{f"sweep_{p}": v for p, v in sweeps.items()}}
    return TableResult(
        name="ablation",
        title=f"Fig. 4 on our extractors: ablation of alpha and T for {row.label} ({count(images)})",
        intro=NME_INTRO + " One parameter varies at a time; the other keeps its value from Settings.",
        settings=settings,
        columns=["parameter", "value", "perturbation", "made_on", *nme_columns(all_names), *METRIC_COLUMNS],
        rows=records, body="\n".join(body), per_image=per_image, images=[i.name for i in images], notes=notes,
        figures={f"ablation_{p}.png": _figure(records, p, all_names, row.label) for p in sweeps},
    )


def _figure(records: list[dict], param: str, names: list[str], label: str):
    """Two panels: NME per (source, extractor) and SSIM_I / mask-SSIM per source, against ``param``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4))
    ax_nme, ax_ssim = fig.subplots(1, 2)
    rs = [r for r in records if r["parameter"] == param]
    sources = list(dict.fromkeys(r["made_on"] for r in rs))
    for src in sources:
        pts = sorted((r for r in rs if r["made_on"] == src), key=lambda r: r["value"])
        x = [r["value"] for r in pts]
        for n in names:
            y = [r.get(f"nme_{n}") for r in pts]
            if any(v is not None for v in y):
                ax_nme.plot(x, [float("nan") if v is None else v for v in y], marker="o", label=f"{n}" + (f" (LB on {src})" if len(sources) > 1 or n != src else ""))
        ax_ssim.plot(x, [float("nan") if r["ssim_i"] is None else r["ssim_i"] for r in pts], marker="o", label=f"SSIM_I ({src})")
        ax_ssim.plot(x, [float("nan") if r["mask_ssim"] is None else r["mask_ssim"] for r in pts], marker="s", linestyle="--", label=f"mask-SSIM ({src})")
    xlabel = PARAMETERS[param]
    for ax, title in ((ax_nme, "NME, fraction of the normaliser (higher = stronger)"), (ax_ssim, "SSIM (higher = less visible)")):
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{label}: {PARAMETERS[param]}")
    fig.tight_layout()
    return fig
