"""``faceshield`` command line: protect, evaluate, demo, models.

The CLI speaks 8-bit levels (``--eps 15`` = 15/255, the paper's default); the Python API takes
[0, 1] units.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text
from rich.table import Table

app = typer.Typer(
    name="faceshield",
    help="Protect face photos against DeepFakes (Landmark Breaker) and measure how well the protection holds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

METHOD_HELP = ("lb = MI-FGSM (Landmark Breaker), base1 = FGSM, base2 = I-FGSM, pgd = PGD with random start, "
               "lb_trans = LB with input diversity (random resize + padding), lb_mix = alternating Base2 / LB steps, "
               "cw = Carlini-Wagner objective with Adam inside the eps-box (seed 004's second attack); "
               "generator = a trained perturbation generator, one forward pass per face (generator:NAME picks one of `faceshield models`; "
               "it takes only --eps up to its own budget, --mask, --mask-scale, --jnd, --chroma, --detector).")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _fmt(v, digits=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if v == float("inf") else f"{v:.{digits}f}"
    return str(v)


def print_evaluation(ev, title: str = "") -> None:
    """Print an :class:`~faceshield.pipeline.evaluate.Evaluation` as two tables."""
    t = Table(title=title or None, title_justify="left")
    for c in ("extractor", "kind", "points", "NME (fraction)", "normaliser", "faces lost"):
        t.add_column(c)
    for r in ev.extractors:
        t.add_row(r.extractor, r.kind, str(r.points), _fmt(r.nme), r.normaliser, f"{r.faces_lost}/{r.faces_clean}")
    out.print(t)
    q = Table(show_header=True)
    for c in ("SSIM_I (whole image)", "mask-SSIM (face boxes)", "PSNR (dB)", "L_inf (8-bit levels)"):
        q.add_column(c)
    q.add_row(_fmt(ev.ssim_i), _fmt(ev.mask_ssim), _fmt(ev.psnr, 2), str(ev.linf))
    out.print(q)
    if ev.visibility:
        v = Table(title="visibility as people see it (face = face boxes x 1.2)", title_justify="left")
        for c in ("measure", "whole image", "face", "reads"):
            v.add_column(c)
        reads = {"ssimulacra2": "100 identical, > 90 visually lossless, < 50 visibly degraded",
                 "flip": "0 identical, 1 black vs white", "butteraugli": "< 1 not visible, > 3 clearly visible"}
        for n, label in (("ssimulacra2", "SSIMULACRA 2"), ("flip", "FLIP"), ("butteraugli", "Butteraugli")):
            if ev.visibility.get(n) is not None:
                v.add_row(label, _fmt(ev.visibility[n], 2), _fmt(ev.visibility.get(f"{n}_face"), 2), reads[n])
        out.print(v)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _config(preset: str, **opts):
    """The :class:`ProtectConfig` of the ``protect`` options: ``preset``'s settings, replaced by every
    option given on the command line (``None``: not given). Checked in CLI units (eps and alpha in
    8-bit levels) before any model loads; raises ``ValueError`` naming the option."""
    from faceshield.pipeline import ProtectConfig

    split = lambda v: tuple(t.strip() for t in v.split(",") if t.strip())  # noqa: E731
    given = {k: (split(v) if k in ("targets", "eot", "domains") else v) for k, v in opts.items() if v is not None}
    return ProtectConfig.from_user(given, preset=preset, name=lambda k: "--preset" if k == "preset" else _flag(k))


class _ItemsPerSecond(ProgressColumn):
    """Rich progress column: items finished per second."""

    def render(self, task) -> Text:
        return Text("-- items/s" if task.speed is None else f"{task.speed:.2f} items/s", style="progress.data.speed")


def _run_protect(inputs: list[Path], output: Path, config, overwrite: bool, evaluate_with, max_pixels: int, show_table: bool,
                 workers: int = 1, ray_address: str | None = None, resume: bool = False) -> int:
    from faceshield.pipeline.batch import protect_batch

    failures = 0
    results = []
    with Progress(TextColumn("[bold]protect"), BarColumn(), MofNCompleteColumn(), _ItemsPerSecond(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"), console=err, transient=False) as bar:
        task = bar.add_task("", total=None)

        def on_plan(to_run, skipped):
            bar.update(task, total=max(1, to_run))
            if skipped:
                bar.console.print(f"resume: {skipped} already protected, {to_run} to go")

        def on_item(r):
            nonlocal failures
            if r.ok:
                ev = r.evaluation
                nmes = ", ".join(f"{e.extractor} {_fmt(e.nme)}" for e in ev.extractors) if ev else ""
                bar.console.print(f"[green]ok[/]    {escape(str(r.input))} -> {escape(str(r.output))}" + (f"  (NME {nmes}; SSIM_I {_fmt(ev.ssim_i)})" if ev else ""), soft_wrap=True)
            else:
                failures += 1
                bar.console.print(f"[red]error[/] {escape(r.error)}", soft_wrap=True)
            results.append(r)
            bar.advance(task)

        try:
            summary = protect_batch(inputs, output, config, workers=workers, ray_address=ray_address, resume=resume, overwrite=overwrite,
                                    evaluate_with=evaluate_with, max_pixels=max_pixels, on_item=on_item, on_plan=on_plan)
        except (ValueError, OSError) as e:  # configuration problems (unknown target, bad weights path)
            err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
            return 2
    if show_table:
        for r in results:
            if r.ok and r.evaluation:
                print_evaluation(r.evaluation, title=_title(r, config))
    skipped = f", {len(summary.skipped)} already done" if summary.skipped else ""
    err.print(f"{sum(r.ok for r in results)} protected, {failures} failed{skipped}; summary in {escape(str(summary.summary_csv))}")
    return 1 if failures else 0


def _title(r, config) -> str:
    """``photo.png: lb, eps=15/255, targets=mtcnn`` (a generator: its own eps, no targets)."""
    s = r.report["settings"] if r.report else config.to_dict()
    what = f"targets={','.join(s['targets'])}" if "targets" in s else "one forward pass"
    return f"{r.input.name}: {s['method']}, eps={s['eps_levels']:g}/255, {what}"


class _FramesPerSecond(ProgressColumn):
    """Rich progress column: processing speed in frames per second."""

    def render(self, task) -> Text:
        return Text("-- frames/s" if task.speed is None else f"{task.speed:.2f} frames/s", style="progress.data.speed")


def _run_protect_video(inputs: list[Path], output: Path, config, overwrite: bool, codec, crf, keyframe_interval: int, max_pixels: int,
                       workers: int = 1, ray_address: str | None = None) -> int:
    from functools import partial

    from faceshield.pipeline.api import protect_videos
    from faceshield.pipeline.batch import protect_videos_split

    run = protect_videos if workers == 1 and ray_address is None else partial(protect_videos_split, workers=workers, ray_address=ray_address)

    failures = 0
    results = []
    with Progress(TextColumn("[bold]protect"), BarColumn(), MofNCompleteColumn(), _FramesPerSecond(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"), console=err, transient=False) as bar:
        tasks: dict[Path, int] = {}

        def on_frame(src, done, total):
            if src not in tasks:
                tasks[src] = bar.add_task(escape(src.name), total=total)
            bar.update(tasks[src], completed=done, total=max(total, done))

        def on_item(r):
            nonlocal failures
            if r.ok:
                s = r.report
                after = s.get("after_codec") or {}
                nmes = ", ".join(f"{k} {_fmt(v)}" for k, v in (after.get("nme") or {}).items())
                measured = f"; after the codec: NME {nmes}, SSIM_I {_fmt(after['ssim_i'])}" if after else ""
                bar.console.print(
                    f"[green]ok[/]    {escape(str(r.input))} -> {escape(str(r.output))}  ({s['frames']} frames at {s['fps']:g} fps, "
                    f"{s['key_frames']} attacked, faces in {s['frames_with_faces']}; SSIM_I {_fmt(s['ssim_i'])}{measured}; {s['frames_per_second']:.2f} frames/s"
                    + (f" on {s['settings']['workers']} workers" if "workers" in s["settings"] else "")
                    + ("; audio kept)" if s["audio"] else ")"),
                    soft_wrap=True,
                )
            else:
                failures += 1
                bar.console.print(f"[red]error[/] {escape(r.error)}", soft_wrap=True)
            results.append(r)

        try:
            run(inputs, output, config, codec=codec, crf=crf, keyframe_interval=keyframe_interval, overwrite=overwrite, max_pixels=max_pixels, on_item=on_item, on_frame=on_frame)
        except (ValueError, OSError) as e:  # configuration problems (unknown target, bad weights path)
            err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
            return 2
    ok = sum(r.ok for r in results)
    err.print(f"{ok} protected, {failures} failed")
    return 1 if failures else 0


@app.command()
def protect(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or directories of images; or video files (.mp4, .mov, .avi, .mkv, .webm).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory (or a .png / video path for a single input).")],
    preset: Annotated[str, typer.Option(help="Starting settings that the other options refine: 'subtle' (the default: --targets mtcnn,stargan --eps 6 --jnd --chroma 0.3, at the visibility bound; disrupts editors, not landmark tools), 'paper' (Landmark Breaker, fastest; visible), 'strong' (--steps 60 --perceptual --jitter-mode random), 'smooth' (--steps 60 --alpha 2 --smooth 2: far less visible), 'quality' (--steps 100 --alpha 2 --smooth 1 --ssim-weight 1 --push 0.5 --jitter-mode random --redetect 10: most protection for the least visible change), 'robust' (quality with --eot default: survives JPEG and video re-encoding; slowest). Measured in docs/results.md and docs/visibility.md.")] = "subtle",
    method: Annotated[Optional[str], typer.Option(help=METHOD_HELP + " [default: lb]")] = None,
    targets: Annotated[Optional[str], typer.Option(help="Comma-separated targets attacked together (see `faceshield models`): landmark extractors (mtcnn, fan ...), manipulators (stargan: its edits are disrupted, Ruiz et al.), DeepFake detectors (with a manipulator: its edits of the protected face should be caught). [default: the preset's; mtcnn,stargan for subtle, mtcnn for the others]")] = None,
    eps: Annotated[Optional[float], typer.Option(help="L_inf budget in 8-bit levels, 1..255. [default: the preset's; 6 for subtle, 15 (the paper's) for the others]")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Iterations T (not for base1). [default: 20, or the preset's]")] = None,
    alpha: Annotated[Optional[float], typer.Option(help="Step size in 8-bit levels (not for base1). [default: 1, or the preset's]")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Stop early once the loss has plateaued: when the last this-many steps improved it by less than 2% of the improvement so far (0 = off; not for base1, cw). [default: 0, or the preset's]")] = None,
    decay: Annotated[Optional[float], typer.Option(help="Momentum decay lambda (lb, lb_trans, lb_mix only). [default: 0.5]")] = None,
    budget: Annotated[Optional[str], typer.Option(help="'project' (clip to the eps-ball each step) or 'paper' (Alg. 1: stop when the next step would leave it); not for base1 and pgd. [default: project]")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (same seed -> identical output bytes). [default: 0]")] = None,
    mask: Annotated[Optional[str], typer.Option(help="'face': perturb only the face regions; 'none': anywhere the gradients reach. [default: face]")] = None,
    jitter: Annotated[Optional[int], typer.Option(help="Box-jitter copies per face (robustness to the detector's box). [default: 9]")] = None,
    jitter_mode: Annotated[Optional[str], typer.Option(help="'fixed' pattern of box copies, or 'random' boxes drawn at every step (holds better when the detector's box moves; ~30% slower). [default: fixed, or the preset's]")] = None,
    eot: Annotated[Optional[str], typer.Option(help="Robustness to re-compression: average the loss over random differentiable transforms, 'default' (JPEG q40-90, resize, blur) or comma-separated specs like 'diffjpeg:q=40..90,blur:0.3..1.2'. About 2-3x slower.")] = None,
    eot_samples: Annotated[Optional[int], typer.Option(help="Transforms sampled per step with --eot. [default: 2]")] = None,
    perceptual: Annotated[Optional[bool], typer.Option("--perceptual/--no-perceptual", help="Follow texture: flat skin gets a third of --eps, edges and hair all of it (pair with more --steps). [default: off, or the preset's]")] = None,
    jnd: Annotated[Optional[bool], typer.Option("--jnd/--no-jnd", help="Keep every pixel within its just-noticeable difference (luminance adaptation and texture masking: flat skin about 3 levels, edges and hair up to --eps): far less visible, weaker. [default: off, or the preset's]")] = None,
    chroma: Annotated[Optional[float], typer.Option(help="Share of the perturbation's colour kept, 0..1; the rest goes into luminance (no colour blotches). A grey photo always gets a grey perturbation. [default: 1, or the preset's]")] = None,
    delta_e_weight: Annotated[Optional[float], typer.Option(help="Add this weight times the mean S-CIELAB colour difference (Delta E, about 1 at a just-noticeable difference) of the face region to the attack's loss (0 = off). [default: 0, or the preset's]")] = None,
    smooth: Annotated[Optional[float], typer.Option(help="Blur the perturbation with a Gaussian of this sigma in pixels (0..20) inside the attack (0 = off): far higher SSIM for the same --eps and better survival of JPEG; pair with more --steps and --alpha 2. [default: 0, or the preset's]")] = None,
    ssim_weight: Annotated[Optional[float], typer.Option(help="Add this weight times (1 - SSIM of the face region) to the attack's loss (0 = off): the attack then spends its budget where it costs the least visible change. [default: 0, or the preset's]")] = None,
    push: Annotated[Optional[float], typer.Option(help="Heat-map targets (fan, hrnet) only: keep pushing each landmark's heat-map away from where it was after the paper's loss has bottomed out (0 = off; 0.5 in --preset quality): much more NME at the same SSIM. [default: 0, or the preset's]")] = None,
    redetect: Annotated[Optional[int], typer.Option(help="Every this many steps, run the target's own detector on the protected image so far and attack every box it now weighs for each face too (0 = off): the perturbation moves the detector's box, and MTCNN's cascade then reads the landmarks from a box the attack never saw. [default: 0, or the preset's]")] = None,
    nme_cap: Annotated[Optional[float], typer.Option(help="Regression targets (mtcnn, facemesh) only: count each attacked box's landmark displacement up to this NME (0 = off): with --redetect a face has several boxes, and the budget then goes to those the detector may still pick with their clean points. [default: 0]")] = None,
    hide: Annotated[Optional[float], typer.Option(help="Targets with a face score (mtcnn, retinaface-*) only: also push the detector's face score below its threshold, with this weight (0 = off): a face the forger's detector cannot find is protected too. [default: 0]")] = None,
    feature_weight: Annotated[Optional[float], typer.Option(help="Targets with features (retinaface-*) only: also distort their early convolutional features around the face, with this weight (0 = off): transfers to CNN face detectors the attack never saw. [default: 0]")] = None,
    detector: Annotated[Optional[str], typer.Option(help="Manipulator targets: the landmark extractor that finds and aligns the faces a manipulator edits (the forger's detector). [default: mtcnn]")] = None,
    domains: Annotated[Optional[str], typer.Option(help="Manipulator targets: comma-separated domains to disrupt (e.g. Blond_Hair,Male). [default: all of each manipulator's]")] = None,
    domain_mode: Annotated[Optional[str], typer.Option(help="Manipulator targets: 'all' disrupts every domain at each step; 'random' one random domain per step (class-transferable, Ruiz et al.). [default: all]")] = None,
    evaluate_with: Annotated[Optional[str], typer.Option("--evaluate-with", help="Comma-separated extractors for the report's NME (default: all available; 'none' to skip). Images only.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    max_pixels: Annotated[int, typer.Option(help="Refuse images larger than this many pixels.")] = 50_000_000,
    codec: Annotated[Optional[str], typer.Option(help="Videos: codec (h264, hevc, mpeg4, vp9, av1, ffv1 = lossless; default h264, vp9 for .webm).")] = None,
    crf: Annotated[Optional[int], typer.Option(help="Videos: quality, lower is better (x264 CRF 0-51, default 18; mpeg4 qscale 1-31).")] = None,
    keyframe_interval: Annotated[int, typer.Option(help="Videos: attack every k-th frame and carry its perturbation to the frames between (1 = every frame).")] = 1,
    workers: Annotated[int, typer.Option(help="Protect on this many local processes, one torch thread each (1 = in this process): photos are shared out among them, a video is split by frame ranges and joined in order. With --ray: Ray workers (0 = one per CPU of the cluster).")] = 1,
    ray: Annotated[bool, typer.Option("--ray", help="Run the workers on a local Ray cluster that this run starts (127.0.0.1), or on --ray-address.")] = False,
    ray_address: Annotated[Optional[str], typer.Option(help="Join this Ray cluster (e.g. auto, or ray://head:10001); implies --ray. OUTPUT must then be a directory every node sees.")] = None,
    resume: Annotated[bool, typer.Option(help="Photos: continue an interrupted run into the same OUTPUT: items its journal (OUTPUT/faceshield-journal.jsonl) or a complete report marks done are skipped, the rest redone.")] = False,
) -> None:
    """Protect photos: writes OUTPUT/<name>.png (lossless) and OUTPUT/<name>.json (settings, faces, metrics).

    Videos (.mp4, .mov, .avi, .mkv, .webm) are re-encoded with the same frame rate and audio:
    OUTPUT.mp4 (or OUTPUT/<name>.<ext>) and a .json report.

    The original files are never modified; a failed item writes nothing and the others go on
    (exit code 1 if any item failed). Photos: OUTPUT/faceshield-journal.jsonl records each finished
    item (so a killed run continues with --resume) and OUTPUT/faceshield-summary.csv / .json list
    them all at the end."""
    try:
        config = _config(preset, method=method, targets=targets, eps=eps, steps=steps, patience=patience, alpha=alpha, decay=decay, budget=budget, seed=seed,
                         mask=mask, jitter=jitter, eot=eot, eot_samples=eot_samples, perceptual=perceptual, jnd=jnd, chroma=chroma, delta_e_weight=delta_e_weight,
                         jitter_mode=jitter_mode, smooth=smooth,
                         ssim_weight=ssim_weight, push=push, redetect=redetect, nme_cap=nme_cap, hide=hide, feature_weight=feature_weight, detector=detector, domains=domains, domain_mode=domain_mode)
    except ValueError as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2)
    ev = None if evaluate_with is None else ([] if evaluate_with == "none" else [s.strip() for s in evaluate_with.split(",") if s.strip()])
    from faceshield.models import list_extractors

    unknown = [n for n in ev or [] if n not in list_extractors()]
    problem = (f"--evaluate-with: unknown extractor {unknown[0]!r}; expected 'none' or among {', '.join(list_extractors())}" if unknown
               else f"--max-pixels: expected a positive integer, got {max_pixels}" if max_pixels < 1 else None)
    if problem:
        err.print(f"[red]error[/] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(2)
    from faceshield.io.video import default_codec, is_video_path, resolve_codec

    ray_target = ray_address or ("local" if ray else None)
    if workers < 0 or (workers == 0 and ray_target is None):
        err.print(f"[red]error[/] --workers: expected a positive integer (0 only with --ray), got {workers}", soft_wrap=True)
        raise typer.Exit(2)

    videos = [p for p in inputs if is_video_path(p)]
    if videos:
        if len(videos) != len(inputs):
            err.print("[red]error[/] expected only videos or only images, got both; protect them in separate runs", soft_wrap=True)
            raise typer.Exit(2)
        try:
            if keyframe_interval < 1:
                raise ValueError(f"--keyframe-interval: expected a positive integer, got {keyframe_interval}")
            resolve_codec(codec or default_codec(output), crf)
        except ValueError as e:
            err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
            raise typer.Exit(2)
        if resume:
            err.print("[red]error[/] --resume applies to photos; a video is protected whole (rerun it with --overwrite)", soft_wrap=True)
            raise typer.Exit(2)
        raise typer.Exit(_run_protect_video(videos, output, config, overwrite, codec, crf, keyframe_interval, max_pixels, workers=max(workers, 1), ray_address=ray_target))
    raise typer.Exit(_run_protect(inputs, output, config, overwrite, ev, max_pixels, show_table=False, workers=workers, ray_address=ray_target, resume=resume))


@app.command()
def evaluate(
    clean: Annotated[Path, typer.Argument(help="The original image.")],
    protected: Annotated[Path, typer.Argument(help="Its protected copy.")],
    extractors: Annotated[Optional[str], typer.Option(help="Comma-separated extractors (default: all available).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics as JSON here.")] = None,
    swap: Annotated[bool, typer.Option("--swap", help="Also make a DeepFake (face swap) of both images and report SSIM_W and whether the swap tool's plausibility filter drops the protected face.")] = False,
    aligner: Annotated[str, typer.Option(help="Extractor whose landmarks align the face swap (any of `faceshield models`).")] = "fan",
    swap_model: Annotated[Optional[Path], typer.Option(help="Face-swap model .pt (with its .json sidecar); default: the shipped one.")] = None,
    sheet: Annotated[Optional[Path], typer.Option(help="Write a before/after PNG here: inputs with landmarks, swap from clean, swap from protected (implies --swap); with --manipulate, the clean and the protected edit per domain.")] = None,
    manipulate: Annotated[Optional[str], typer.Option(help="Comma-separated manipulators (e.g. stargan): edit both files for every domain and report the disruption (L2 of the edits, share disrupted).")] = None,
    judges: Annotated[Optional[str], typer.Option(help="With --manipulate: comma-separated DeepFake detectors (e.g. meso4-df) scoring the clean and the protected edits.")] = None,
    purify: Annotated[Optional[str], typer.Option(help="First clean the protected file as a forger would and measure what is left: 'magdr' (detect, then restore per facial region: `faceshield purify`), or one restoration spec ('nlmeans:5', 'jpeg75', 'median:3' ...).")] = None,
) -> None:
    """Print NME per extractor (each through its full pipeline), SSIM_I, mask-SSIM, PSNR and L_inf;
    with --swap also SSIM_W through a real face swap; with --manipulate the disruption of each editor;
    with --purify magdr all of it after the forger's clean-up."""
    from faceshield.core.errors import FaceshieldError
    from faceshield.io import write_json_atomic
    from faceshield.pipeline.api import evaluate as _evaluate

    try:
        names = lambda v: None if v is None else [t.strip() for t in v.split(",") if t.strip()]  # noqa: E731
        ev = _evaluate(clean, protected, extractors=names(extractors), swap=swap, aligner=aligner, swap_model=swap_model, sheet=sheet,
                       manipulate=names(manipulate) or (), judges=names(judges) or (), purify=purify)
    except (FaceshieldError, ValueError, OSError) as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1)
    if ev.purification is not None:
        r = ev.purification
        what = (f"{r['purifier']} applied" if r.get("detected") is None else
                "the editor's detector finds no face: nothing to clean" if r["no_face"] else
                f"detected (S_final {r['s_final']:.5f} > {r['threshold']:.5f}), restored with {', '.join(r['restorations']) or 'nothing'}" if r["detected"]
                else f"not detected (S_final {r['s_final']:.5f}): left as it is")
        out.print(f"purified first ({'MagDR' if r.get('detected') is not None else 'restoration'}): {what}; every figure below is of the purified copy", soft_wrap=True)
    print_evaluation(ev, title=f"{protected} vs {clean}")
    if ev.swap is not None:
        w = ev.swap
        t = Table(title=f"face swap aligned by {w.aligner}", title_justify="left")
        for c in ("SSIM_W (swap region)", "NME of aligner", "face lost", "dropped by filter", "reasons"):
            t.add_column(c)
        t.add_row(_fmt(w.ssim_w), _fmt(w.nme), "yes" if w.lost else "no", "yes" if w.dropped_protected else "no", ", ".join(w.reasons) or "-")
        out.print(t)
    for m in ev.disruption:
        t = Table(title=f"{m.model}: L2 = MSE of clean vs protected edit (output crop in [-1, 1]); disrupted: L2 >= 0.05", title_justify="left")
        for c in ("domain", "L2 (clean alignment)", "L2 (re-detected)", "disrupted"):
            t.add_column(c)
        for d in m.domains:
            t.add_row(d, _fmt(m.l2[d], 4), _fmt(m.l2_redetected[d], 4), "yes" if m.l2[d] >= 0.05 else "no")
        out.print(t)
        out.print(f"{m.model}: share of edits disrupted {_fmt(m.disrupted, 2)} ({len(m.l2_each)} face x domain edits)", soft_wrap=True)
        for j, r in m.judges.items():
            out.print(f"{j}: P(real) of the clean face {_fmt(r['real_input'])}, its edit {_fmt(r['clean_edit'])}; of the protected face {_fmt(r['protected_input'])}, its edit {_fmt(r['protected_edit'])}")
    if sheet is not None:
        out.print(f"before/after sheet: {sheet}")
    if json_out:
        write_json_atomic(json_out, ev.to_dict(), overwrite=True)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the protected sample.")] = Path("faceshield-demo"),
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    preset: Annotated[str, typer.Option(help="Settings, as for `protect` (default: subtle, the protect command's default).")] = "subtle",
    method: Annotated[Optional[str], typer.Option(help=METHOD_HELP + " [default: the preset's]")] = None,
    swap: Annotated[bool, typer.Option(help="Also make a DeepFake of the clean and the protected sample (a face swap and the StarGAN editor's edits) and write before/after sheets.")] = True,
) -> None:
    """Protect the built-in sample (scikit-image's public-domain astronaut), print the evaluation and
    the DeepFake checks: SSIM_W through the shipped face swap, and the share of the StarGAN editor's
    edits disrupted, each with a before/after sheet."""
    from faceshield.models.weights import package_data

    try:
        config = _config(preset, method=method)
    except ValueError as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2)
    code = _run_protect([package_data("astronaut.png")], output, config, overwrite, None, 50_000_000, show_table=True)
    if code == 0 and swap:
        _demo_swap(package_data("astronaut.png"), output / "astronaut.png", output / "astronaut_swap_sheet.png")
        _demo_edit(package_data("astronaut.png"), output / "astronaut.png", output / "astronaut_edit_sheet.png")
    raise typer.Exit(code)


def _demo_edit(clean: Path, protected: Path, sheet: Path) -> None:
    """The editor check of the demo: StarGAN edits both images for every domain; the sheet shows them."""
    from faceshield.core.errors import FaceshieldError
    from faceshield.deepfake.edit import disruption_sheet, measure_disruption
    from faceshield.io import read_image, write_image_atomic

    try:
        a, b = read_image(clean).rgb, read_image(protected).rgb
        m = measure_disruption(a, b, "stargan")
        write_image_atomic(sheet, disruption_sheet(a, b, "stargan"), overwrite=True)
    except (FaceshieldError, OSError) as e:
        err.print(f"[yellow]editor check skipped[/] {escape(str(e))}", soft_wrap=True)
        return
    done = sum(v >= 0.05 for v in m.l2_each)
    out.print(f"DeepFake check (StarGAN editor, {', '.join(m.domains)}): {done} of {len(m.l2_each)} edits disrupted (L2 >= 0.05); before/after sheet: {sheet}", soft_wrap=True)


def _demo_swap(clean: Path, protected: Path, sheet: Path) -> None:
    """The DeepFake check of the demo: swap both images (aligned by FAN) and write the sheet."""
    from faceshield.core.errors import FaceshieldError
    from faceshield.pipeline.api import evaluate as _evaluate

    try:
        ev = _evaluate(clean, protected, extractors=[], swap=True, aligner="fan", sheet=sheet)
    except (FaceshieldError, OSError) as e:  # e.g. no swap model: the protection itself is done
        err.print(f"[yellow]face-swap check skipped[/] {escape(str(e))}", soft_wrap=True)
        return
    w = ev.swap
    verdict = "the swap tool drops the protected face" if w.dropped_protected else ("the face is lost" if w.lost else f"SSIM_W {_fmt(w.ssim_w)}")
    out.print(f"DeepFake check (face swap aligned by {w.aligner}): aligner NME {_fmt(w.nme)}, {verdict}; before/after sheet: {sheet}")


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list (name, family, kind, inputs, weights ...) for scripts.")] = False) -> None:
    """List every model: the targets (landmark extractors: heat-map / regression / black-box;
    manipulators; DeepFake detectors) and the perturbation generators that protect in one forward
    pass (with what they were trained against), with what they take and where their weights come from."""
    import json

    from faceshield.models import list_targets, target_info

    infos = [target_info(n) for n in list_targets()]
    if as_json:
        typer.echo(json.dumps([i.to_dict() for i in infos], indent=1))
        return
    t = Table()
    for c in ("name", "kind", "inputs", "weights"):
        t.add_column(c)
    for i in infos:
        kind = f"landmark: {i.kind.value}" if i.family == "landmark" else i.kind.value
        if getattr(i, "same_network_as", None):
            kind += f" (same network as {i.same_network_as})"
        inputs = i.inputs + (f"; domains: {', '.join(i.domains)}" if getattr(i, "domains", ()) else "")
        if getattr(i, "trained_against", ()):
            kind += f" (trained against {', '.join(i.trained_against)})"
        t.add_row(i.name, kind, inputs, i.weights)
    out.print(t)


@app.command("train-disrupter", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def train_disrupter(ctx: typer.Context) -> None:
    """Train a DeepFake Disrupter perturbation generator on CelebA (seed 002, Eq. 7); every option
    is that of `python -m faceshield.training.disrupter` (see `faceshield train-disrupter --help`).
    Needs the CelebA data ($FACESHIELD_DATA or ../shared/data) and, for the detector in the loss,
    the MesoNet files ($FACESHIELD_MESONET_DIR)."""
    from faceshield.training.disrupter import main as train_main

    train_main(list(ctx.args), prog="faceshield train-disrupter")


@app.command("train-initiative", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def train_initiative(ctx: typer.Context) -> None:
    """Train an Initiative Defense poison generator with its surrogate editor on CelebA (seed 003,
    Alg. 1); every option is that of `python -m faceshield.training.initiative` (see `faceshield
    train-initiative --help`). Needs the CelebA data ($FACESHIELD_DATA or ../shared/data)."""
    from faceshield.training.initiative import main as train_main

    train_main(list(ctx.args), prog="faceshield train-initiative")


@app.command("train-reenactment", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def train_reenactment(ctx: typer.Context) -> None:
    """Train an Initiative Defense poison generator against face reenactment on one person's video
    (seed 003, Eq. 11); every option is that of `python -m faceshield.training.reenactment` (see
    `faceshield train-reenactment --help`). Videos are looked up under $FACESHIELD_DATA/videos."""
    from faceshield.training.reenactment import main as train_main

    train_main(list(ctx.args), prog="faceshield train-reenactment")


@app.command("manipulate")
def manipulate_cmd(
    image: Annotated[Path, typer.Argument(help="A photo (clean or protected).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the edited photo (.png).")],
    model: Annotated[str, typer.Option(help="The manipulator (see `faceshield models`).")] = "stargan",
    domain: Annotated[Optional[str], typer.Option(help="What to edit towards, one of the model's domains (e.g. Blond_Hair). [default: its first]")] = None,
    detector: Annotated[str, typer.Option(help="Landmark extractor that finds and aligns the faces.")] = "mtcnn",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """See what a face editor makes of a photo: every face edited towards DOMAIN, pasted back."""
    from faceshield.core.errors import FaceshieldError, NoFaceError
    from faceshield.io import read_image, write_image_atomic
    from faceshield.models import list_extractors, list_targets, target_info

    manipulators = list_targets(family="manipulator")
    problem = None
    if model not in manipulators:
        problem = f"--model: unknown manipulator {model!r}; expected one of {', '.join(manipulators)}"
    elif domain is not None and domain not in target_info(model).domains:
        problem = f"--domain: unknown domain {domain!r} for {model}; expected one of {', '.join(target_info(model).domains)}"
    elif detector not in list_extractors():
        problem = f"--detector: unknown extractor {detector!r}; expected one of {', '.join(list_extractors())}"
    elif output.exists() and not overwrite:
        problem = f"{output} exists; pass --overwrite to replace it"
    if problem:
        err.print(f"[red]error[/] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(2)
    from faceshield.deepfake.edit import manipulate

    try:
        rgb = read_image(image).rgb
        edited = manipulate(rgb, model, domain, detector=detector)
        written = write_image_atomic(output, edited, overwrite=overwrite)
    except NoFaceError as e:
        err.print(f"[red]error[/] {escape(str(image))}: {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1)
    except (FaceshieldError, ValueError, OSError) as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"{image} edited by {model} towards {domain or target_info(model).domains[0]}: {written}")


@app.command("train-landmarks", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train_landmarks(ctx: typer.Context) -> None:
    """Train a compact FAN / HRNet 68-point model (development data; see --help)."""
    from faceshield.training.landmarks import main as train_main

    raise typer.Exit(train_main(list(ctx.args)) or 0)


@app.command("train-swap", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train_swap(ctx: typer.Context) -> None:
    """Train the face-swap auto-encoder on two videos (development data; see --help)."""
    from faceshield.training.swap import main as train_main

    raise typer.Exit(train_main(list(ctx.args)) or 0)


@app.command()
def purify(
    image: Annotated[Path, typer.Argument(help="A photo (perhaps protected).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the cleaned photo (.png); a .json report goes beside it.")],
    model: Annotated[str, typer.Option(help="The manipulator whose edits the detector watches (see `faceshield models`).")] = "stargan",
    threshold: Annotated[Optional[float], typer.Option(help="S_final above which a photo counts as disrupted. [default: fitted on 20 held-out CelebA photos, 5 % of clean ones flagged]")] = None,
    lam: Annotated[Optional[float], typer.Option("--lambda", help="Weight of S_dist in S_final = lambda * S_dist + S_cons (Eq. 9). [default: the shipped fit]")] = None,
    rounds: Annotated[int, typer.Option(help="At most this many passes over the reconstructor's layers.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """What a forger does with a protected photo (MagDR): detect a disruption from the editor's
    outputs (S_final: their consistency under small pre-processings and where they change the face),
    and if detected, restore each facial region with the restoration (denoisers, then JPEG, blur,
    resizing, bit depth) that makes the edits normal again. Writes OUTPUT and OUTPUT.json (detected,
    S_dist, S_cons, S_final before and after, the restorations applied per region)."""
    from faceshield.core.errors import FaceshieldError
    from faceshield.defenses.magdr import FinalDetector, Reconstructor
    from faceshield.io import read_image, write_image_atomic, write_json_atomic
    from faceshield.models import list_targets

    manipulators = list_targets(family="manipulator")
    if model not in manipulators:
        err.print(f"[red]error[/] --model: unknown manipulator {model!r}; expected one of {', '.join(manipulators)}", soft_wrap=True)
        raise typer.Exit(2)
    problem = ("-o: expected a .png path" if output.suffix.lower() != ".png" else "--rounds: expected a positive integer" if rounds < 1
               else "--threshold: expected a positive number" if threshold is not None and threshold <= 0
               else "--lambda: expected a number >= 0" if lam is not None and lam < 0 else None)
    if problem:
        err.print(f"[red]error[/] {problem}", soft_wrap=True)
        raise typer.Exit(2)
    report = output.with_suffix(".json")
    written = None
    try:
        for p in (output, report):
            if p.exists() and not overwrite:
                raise FileExistsError(f"{p} exists; pass --overwrite to replace it")
        img = read_image(image)
        restored, record = Reconstructor(FinalDetector(model, lam=lam, threshold=threshold), rounds=rounds)(img.rgb)
        written = write_image_atomic(output, restored, img.alpha, overwrite=overwrite)
        write_json_atomic(report, {"input": str(image), "output": str(output), "model": model, **record}, overwrite=overwrite)
    except (FaceshieldError, OSError, ValueError) as e:
        if written is not None:
            written.unlink(missing_ok=True)  # no photo without its report
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1)
    if record["no_face"]:
        out.print(f"{escape(str(image))}: the {escape(model)} editor's detector finds no face; copied unchanged -> {escape(str(output))}", soft_wrap=True)
        return
    what = f"disrupted (S_final {record['s_final']:.5f} > {record['threshold']:.5f}); applied {', '.join(record['restorations']) or 'nothing'}, S_final now {record['s_final_after']:.5f}" \
        if record["detected"] else f"not disrupted (S_final {record['s_final']:.5f} <= {record['threshold']:.5f}); copied unchanged"
    out.print(f"{escape(str(image))}: {what} -> {escape(str(output))}", soft_wrap=True)


@app.command()
def bench(
    config: Annotated[Path, typer.Argument(help="YAML benchmark config (see benchmarks/configs/).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output directory (default: the config's `out`).")] = None,
    tables: Annotated[Optional[str], typer.Option(help="Comma-separated tables to run (default: all the config defines).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", help="At most N images per table.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Reuse the tables already in the output directory that were made with the same "
                                         "inputs (seed, limit, images, extractors, attack, table options) and run the rest: goes on after "
                                         "an interruption, or joins tables run apart with --tables under one index.md.")] = False,
) -> None:
    """Regenerate the paper's tables on our extractors: markdown + CSV + JSON + PNG per table, with
    the resolved config, package versions, seed and timings (run.json) beside them."""
    from faceshield.benchmark import BenchConfigError, RichProgress, load_config, run_benchmark, select_tables

    try:
        cfg = load_config(config)
        select_tables(cfg, tables)
    except BenchConfigError as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2)
    try:
        run = run_benchmark(cfg, out=out_dir, tables=tables, limit=limit, progress=RichProgress(err), resume=resume)
    except BenchConfigError as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2)
    t = run.record["timings"]
    again = f" ({len(run.record['reused'])} reused)" if run.record["reused"] else ""
    out.print(f"{len(run.tables)} table(s){again} in {t['total_seconds']:.1f} s -> {escape(str(run.out))}/ (index.md, run.json; {t['protections']} protections, {t['protections_reused']} reused)", soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on. The default, 127.0.0.1, is this computer only; anything else lets the network upload files to it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(help="Refuse files larger than this many megabytes (cut off while they stream in).")] = 25.0,
    max_pixels: Annotated[int, typer.Option(help="Refuse photos (and video frames) with more pixels than this.")] = 25_000_000,
    keep_minutes: Annotated[float, typer.Option(help="Delete every job and its files (uploads and results) this many minutes after it finished.")] = 30.0,
) -> None:
    """Serve a local web page to protect photos and short videos: drop files, pick a strength, watch
    the progress, compare before / after (with the difference amplified), read the evaluation and
    the DeepFake checks, download the protected files. Open http://HOST:PORT/ in a browser; Ctrl-C stops
    the server and deletes its files."""
    import ipaddress

    problem = (f"--port: expected 1..65535, got {port}" if not 0 < port < 65536
               else f"--max-upload-mb: expected a positive number, got {max_upload_mb:g}" if max_upload_mb <= 0
               else f"--max-pixels: expected a positive integer, got {max_pixels}" if max_pixels < 1
               else f"--keep-minutes: expected a positive number, got {keep_minutes:g}" if keep_minutes <= 0 else None)
    if problem:
        err.print(f"[red]error[/] {escape(problem)}", soft_wrap=True)
        raise typer.Exit(2)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        err.print(f"[yellow]warning[/] listening on {escape(host)}: anyone who can reach this address can upload files and use this computer's CPU; "
                  "there is no login. Use the default 127.0.0.1 unless you mean it.", soft_wrap=True)
    import uvicorn

    from faceshield.web import ServeSettings, create_app

    settings = ServeSettings(max_upload_bytes=int(max_upload_mb * 1e6), max_pixels=max_pixels, keep_seconds=keep_minutes * 60)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"faceshield: open http://{shown}:{port}/ (Ctrl-C stops; files are deleted {keep_minutes:g} min after each job, and all of them on exit)", soft_wrap=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def main() -> None:  # pragma: no cover
    sys.exit(app())
