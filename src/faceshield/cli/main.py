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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
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

METHOD_HELP = "lb = MI-FGSM (Landmark Breaker), base1 = FGSM, base2 = I-FGSM, pgd = PGD with random start."


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


def _config(method, targets, eps, steps, alpha, decay, budget, seed, mask, jitter):
    from faceshield.pipeline import ProtectConfig

    return ProtectConfig(
        method=method, targets=tuple(t.strip() for t in targets.split(",") if t.strip()), eps=eps / 255, alpha=alpha / 255,
        steps=steps, decay=decay, budget=budget, seed=seed, mask=mask, jitter=jitter,
    )


def _run_protect(inputs: list[Path], output: Path, config, overwrite: bool, evaluate_with, max_pixels: int, show_table: bool) -> int:
    from faceshield.io import list_images
    from faceshield.pipeline.api import protect

    images, problems = list_images(inputs)
    total = max(1, len(images) + len(problems))
    failures = 0
    results = []
    with Progress(TextColumn("[bold]protect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.description}"), console=err, transient=False) as bar:
        task = bar.add_task("", total=total)

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
            protect(inputs, output, config, overwrite=overwrite, evaluate_with=evaluate_with, max_pixels=max_pixels, on_item=on_item)
        except (ValueError, OSError) as e:  # configuration problems (unknown target, bad weights path)
            err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
            return 2
    if show_table:
        for r in results:
            if r.ok and r.evaluation:
                print_evaluation(r.evaluation, title=f"{r.input.name}: {config.method}, eps={config.eps * 255:g}/255, targets={','.join(config.targets)}")
    ok = sum(r.ok for r in results)
    err.print(f"{ok} protected, {failures} failed")
    return 1 if failures else 0


@app.command()
def protect(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or directories of images.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory (or a .png path for a single input).")],
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "lb",
    targets: Annotated[str, typer.Option(help="Comma-separated white-box extractors to attack together (see `faceshield models`).")] = "mtcnn",
    eps: Annotated[float, typer.Option(help="L_inf budget in 8-bit levels (15 = paper).")] = 15,
    steps: Annotated[int, typer.Option(help="Iterations T.")] = 20,
    alpha: Annotated[float, typer.Option(help="Step size in 8-bit levels.")] = 1,
    decay: Annotated[float, typer.Option(help="MI-FGSM momentum decay lambda.")] = 0.5,
    budget: Annotated[str, typer.Option(help="'project' (clip to the eps-ball each step) or 'paper' (Alg. 1: stop when the next step would leave it).")] = "project",
    seed: Annotated[int, typer.Option(help="Random seed (same seed -> identical output bytes).")] = 0,
    mask: Annotated[str, typer.Option(help="'face': perturb only the face regions; 'none': anywhere the gradients reach.")] = "face",
    jitter: Annotated[int, typer.Option(help="Box-jitter copies per face (robustness to the detector's box).")] = 9,
    evaluate_with: Annotated[Optional[str], typer.Option("--evaluate-with", help="Comma-separated extractors for the report's NME (default: all available; 'none' to skip).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    max_pixels: Annotated[int, typer.Option(help="Refuse images larger than this many pixels.")] = 50_000_000,
) -> None:
    """Protect photos: writes OUTPUT/<name>.png (lossless) and OUTPUT/<name>.json (settings, faces, metrics).

    The original files are never modified; a failed item writes nothing and the others go on
    (exit code 1 if any item failed)."""
    try:
        config = _config(method, targets, eps, steps, alpha, decay, budget, seed, mask, jitter)
    except ValueError as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(2)
    ev = None if evaluate_with is None else ([] if evaluate_with == "none" else [s.strip() for s in evaluate_with.split(",") if s.strip()])
    raise typer.Exit(_run_protect(inputs, output, config, overwrite, ev, max_pixels, show_table=False))


@app.command()
def evaluate(
    clean: Annotated[Path, typer.Argument(help="The original image.")],
    protected: Annotated[Path, typer.Argument(help="Its protected copy.")],
    extractors: Annotated[Optional[str], typer.Option(help="Comma-separated extractors (default: all available).")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the metrics as JSON here.")] = None,
) -> None:
    """Print NME per extractor (each through its full pipeline), SSIM_I, mask-SSIM, PSNR and L_inf."""
    from faceshield.core.errors import FaceshieldError
    from faceshield.io import write_json_atomic
    from faceshield.pipeline.api import evaluate as _evaluate

    try:
        ev = _evaluate(clean, protected, extractors=None if extractors is None else [s.strip() for s in extractors.split(",")])
    except (FaceshieldError, ValueError, OSError) as e:
        err.print(f"[red]error[/] {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(1)
    print_evaluation(ev, title=f"{protected} vs {clean}")
    if json_out:
        write_json_atomic(json_out, ev.to_dict(), overwrite=True)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the protected sample.")] = Path("faceshield-demo"),
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "lb",
) -> None:
    """Protect the built-in sample (scikit-image's public-domain astronaut) and print the evaluation."""
    from faceshield.models.weights import package_data
    from faceshield.pipeline import ProtectConfig

    code = _run_protect([package_data("astronaut.png")], output, ProtectConfig(method=method), overwrite, None, 50_000_000, show_table=True)
    raise typer.Exit(code)


@app.command()
def models() -> None:
    """List the registered landmark extractors, their point count, kind and weight source."""
    from faceshield.models import extractor_info, list_extractors

    t = Table()
    for c in ("name", "points", "kind", "NME normaliser", "weights"):
        t.add_column(c)
    for n in list_extractors():
        i = extractor_info(n)
        t.add_row(n, str(i.scheme.n_points), i.kind.value, i.scheme.normaliser_name, i.weights)
    out.print(t)


@app.command("train-landmarks", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}, add_help_option=False)
def train_landmarks(ctx: typer.Context) -> None:
    """Train a compact FAN / HRNet 68-point model (development data; see --help)."""
    from faceshield.training.landmarks import main as train_main

    raise typer.Exit(train_main(list(ctx.args)) or 0)


def main() -> None:  # pragma: no cover
    sys.exit(app())
