"""Run a benchmark config: load the images, run each table, write its files, and record the run
(resolved config, versions, seed, timings) beside them."""
from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from faceshield.benchmark.ablation import run_ablation
from faceshield.benchmark.config import TABLE_KEYS, BenchConfig, BenchConfigError, load_config
from faceshield.benchmark.context import BenchContext
from faceshield.benchmark.nme import run_nme_table
from faceshield.benchmark.progress import BenchProgress
from faceshield.benchmark.report import TableResult, environment, read_table, write_table, write_text_atomic
from faceshield.benchmark.robustness import run_table4
from faceshield.benchmark.sources import ImageLoader
from faceshield.benchmark.swap import run_swap
from faceshield.io import write_json_atomic

#: Table name -> runner ``(ctx, config, options, images, notes) -> TableResult``.
RUNNERS: dict[str, Callable[..., TableResult]] = {
    "table1": partial(run_nme_table, "table1"),
    "table2": partial(run_nme_table, "table2"),
    "table3": partial(run_nme_table, "table3"),
    "table4": run_table4,
    "ablation": run_ablation,
    "swap": run_swap,
}


@dataclass
class BenchRun:
    """What :func:`run_benchmark` did: the output directory, each table's result, the files written
    and the run record (also in ``<out>/run.json``)."""

    out: Path
    tables: dict[str, TableResult]
    files: list[Path]
    record: dict


def select_tables(config: BenchConfig, tables: str | Sequence[str] | None) -> list[str]:
    """The tables to run, in config order: all of them, or those named (comma-separated or a list).

    Raises:
        BenchConfigError: a name is not a table, or not one this config defines.
    """
    if tables is None:
        return list(config.tables)
    names = [t.strip() for t in (tables.split(",") if isinstance(tables, str) else tables) if t.strip()]
    if not names:
        raise BenchConfigError(f"--tables: expected one or more of {', '.join(config.tables)}, got none")
    for n in names:
        if n not in TABLE_KEYS:
            raise BenchConfigError(f"--tables: unknown table {n!r}; expected one of {', '.join(TABLE_KEYS)}")
        if n not in config.tables:
            raise BenchConfigError(f"--tables: table {n!r} is not in {config.path or 'the config'} (it defines {', '.join(config.tables)}); add it under tables:")
    return [n for n in config.tables if n in names]


def run_benchmark(
    config: BenchConfig | str | os.PathLike | Mapping,
    *,
    out: str | os.PathLike | None = None,
    tables: str | Sequence[str] | None = None,
    limit: int | None = None,
    progress: BenchProgress | None = None,
    resume: bool = False,
) -> BenchRun:
    """Regenerate the tables of a benchmark config.

    Args:
        config: a :class:`BenchConfig`, a YAML path or a config mapping.
        out: output directory (default: the config's ``out``, else ``out/bench/<name>``).
        tables: run only these tables (names the config defines).
        limit: at most this many images per table (default: the config's ``limit``).
        progress: progress receiver (e.g. :class:`~faceshield.benchmark.progress.RichProgress`).
        resume: reuse a table already in ``out`` when its JSON records the same inputs (seed,
            limit, images, extractors, attack, the table's options; :meth:`BenchConfig.table_inputs`)
            instead of running it again: an interrupted run goes on where it stopped, and tables
            run apart (``--tables``, e.g. in parallel) come together under one ``index.md``.

    Returns:
        :class:`BenchRun`. Files in ``out``: per table ``<table>.md / .csv / .json`` (+ ``.png``
        plots), ``index.md`` (every table), ``run.json`` (config, versions, seed, timings) and
        ``config.yaml`` (the resolved config: rerunning it gives the same tables).

    Raises:
        BenchConfigError: bad config, table selection or limit (nothing is run).
    """
    cfg = config if isinstance(config, BenchConfig) else load_config(config)
    selected = select_tables(cfg, tables)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise BenchConfigError(f"--limit: expected a positive integer, got {limit!r}")
    limit = cfg.limit if limit is None else limit
    out_dir = Path(out) if out is not None else cfg.out_dir
    progress = progress or BenchProgress()
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    ctx = BenchContext(cfg.seed, progress)
    loader = ImageLoader(cfg.max_side)
    env = environment()
    started, t_run = time.strftime("%Y-%m-%d %H:%M:%S %z"), time.perf_counter()
    results: dict[str, TableResult] = {}
    files: list[Path] = []
    shown: set[str] = set()
    reused: list[str] = []

    def record_run(finished: bool) -> tuple[dict, list[Path]]:
        """``run.json``, ``config.yaml`` and ``index.md`` for the tables done so far: rewritten after
        every table, so an interrupted run keeps the record of the tables it finished."""
        record = {
            "name": cfg.name,
            "description": cfg.description,
            "out": str(out_dir),
            "config_file": None if cfg.path is None else str(cfg.path),
            "config": cfg.to_dict(),
            "config_text": cfg.text,
            "tables": selected,
            "finished": finished,
            "reused": reused,
            "seed": cfg.seed,
            "limit": limit,
            "images": {n: r.images for n, r in results.items()},
            "notes": {n: r.notes for n, r in results.items() if r.notes},
            "timings": {
                "total_seconds": round(time.perf_counter() - t_run, 3),
                "tables": {n: round(r.seconds, 3) for n, r in results.items()},
                "protections": ctx.stats["protections"],
                "protections_reused": ctx.stats["protections_reused"],
                "started": started,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            },
            "files": [str(p.relative_to(out_dir)) for p in files],
            "env": env,
        }
        return record, [write_json_atomic(out_dir / "run.json", record, overwrite=True), _write_config(out_dir / "config.yaml", cfg),
                        write_text_atomic(out_dir / "index.md", _index(cfg, record, results))]

    try:
        for name in selected:
            inputs = cfg.table_inputs(name, limit)
            res = None
            if resume:
                res, msg = _saved_table(out_dir, name, inputs)
                progress.note(msg)
            if res is not None:
                reused.append(name)
                files += [p for p in _table_files(out_dir, res) if p.exists()]
            else:
                opts = cfg.tables[name]
                images, notes = loader.load(opts.get("images") or cfg.images, limit)
                t0 = time.perf_counter()
                res = RUNNERS[name](ctx, cfg, opts, images, list(notes))
                res.seconds = time.perf_counter() - t0
                if cfg.max_side is not None:
                    res.settings["max_side"] = cfg.max_side
                files += write_table(out_dir, res, env, inputs)
                progress.finish(name, res.seconds)
                for n in res.notes:
                    if n not in shown:
                        shown.add(n)
                        progress.note(f"{name}: {n}")
            results[name] = res
            if name != selected[-1]:
                record_run(finished=False)
    finally:
        progress.close()
    record, written = record_run(finished=True)
    return BenchRun(out=out_dir, tables=results, files=files + written, record=record)


def _saved_table(out_dir: Path, name: str, inputs: dict) -> tuple[TableResult | None, str]:
    """The table ``name`` saved in ``out_dir`` if it was made with ``inputs``, and what was decided."""
    path = out_dir / f"{name}.json"
    if not path.exists():
        return None, f"{name}: not in {out_dir} yet, running it"
    saved = read_table(path)
    if saved is None or saved[1] is None:
        return None, f"{name}: {path} does not record its inputs (unreadable, or written by an older faceshield), running it again"
    inputs = json.loads(json.dumps(inputs))  # as the JSON holds them (tuples -> lists)
    if saved[1] != inputs:
        diff = sorted(k for k in inputs if saved[1].get(k) != inputs[k])
        return None, f"{name}: {path} was made with other {', '.join(diff)}, running it again"
    return saved[0], f"{name}: reused from {path} (same inputs)"


def _table_files(out_dir: Path, res: TableResult) -> list[Path]:
    return [out_dir / f"{res.name}{ext}" for ext in (".md", ".csv", ".json")] + [out_dir / n for n in res.figures]


def _write_config(path: Path, cfg: BenchConfig) -> Path:
    import yaml

    head = f"# Resolved config of benchmark {cfg.name!r} (defaults filled in); `faceshield bench {path.name}` reruns it.\n"
    return write_text_atomic(path, head + yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None, width=120))


def _index(cfg: BenchConfig, record: dict, results: dict[str, TableResult]) -> str:
    env, t = record["env"], record["timings"]
    v = env["versions"]
    lines = [f"# Benchmark: {cfg.name}", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    lines += [
        f"Config: `{record['config_file'] or 'mapping'}` (resolved: `config.yaml`; everything recorded in `run.json`). "
        f"Seed {cfg.seed}. Started {t['started']}, {t['total_seconds']:.1f} s; {t['protections']} protections "
        f"({t['protections_reused']} reused across tables). faceshield {v.get('faceshield')}, torch {v.get('torch')}, "
        f"numpy {v.get('numpy')}, Python {v.get('python')}, {env['torch_threads']} torch thread(s), {env['machine']}"
        + (f", git {env['git']['commit'][:10]}{' (dirty)' if env['git']['dirty'] else ''}" if env.get("git") else "") + ".",
        "",
    ]
    if record["reused"]:
        lines += [f"Reused from earlier runs (`--resume`): {', '.join(record['reused'])}; each keeps its own time, and its "
                  f"JSON its own package versions and git revision. The totals above are this run's.", ""]
    if not record["finished"]:
        lines += [f"**Unfinished**: {len(results)} of the {len(record['tables'])} tables so far "
                  f"({', '.join(results) or 'none'}); the run was still going or was interrupted.", ""]
    for r in results.values():
        lines += [r.markdown(), ""]
    return "\n".join(lines).rstrip() + "\n"
