"""Initiative Defense against face reenactment, Table 2's shape, and the joint scenario (Fig. 8).

For each video and each translator architecture (``faceshield.training.reenactment.TRANSLATORS``)
the forger trains two models from scratch with the same seed: ``M`` on the person's clean training
frames and ``M'`` on the same frames poisoned by a PG (8-bit, as published). Both render the
*held-out* frames (the last 20 % in time) from their landmark drawings. Per PG and architecture:

* ``l1`` / ``l2``: mean L1 / MSE between ``M(z)`` and ``M'(z)`` on [-1, 1] (the whole crop);
* ``dsr``: share of held-out frames with that L1 >= 0.05 (``DISRUPTED_L1``);
* ``face_l1``: the same L1 inside the face oval only;
* ``err_clean`` / ``err_poisoned``: each model's L1 against the real frame, inside the face oval.

``floor`` is a second clean ``unet`` trained with another seed: how far two clean trainings differ,
so a DSR is only meaningful where the floor's is near 0. The PSNR is that of the poisoned frames
against the clean ones. ``--joint`` adds Fig. 8's scenario: the frames protected by the
attribute-editing PG (``generator:initiative``) and then the reenactment PG, measured against our
StarGAN (DSR at L2 >= 0.05 over its five domains, gray-box) and against the ``unet`` forger;
``both_one_budget`` is the two together projected back onto one PG's L_inf budget (8 levels), so
that the joint protection costs no more than either alone.

    python benchmarks/initiative_reenactment.py --config benchmarks/configs/initiative_reenactment.yaml
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from _common import DATA, RESULTS, ROOT, environment, write
from faceshield.training.reenactment import (DISRUPTED_L1, TRANSLATORS, load_pg, masked_l1, poison, resolve_video, train_translator,
                                             video_faces)


def _flag(k: str, v) -> str:
    k = "--" + k.replace("_", "-")
    return k if v is True else f"{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) / 2).pow(2).flatten(1).mean(1).clamp(min=1e-12)
    return round(float((10 * torch.log10(1 / mse)).mean()), 2)


def compare(m: torch.nn.Module, mp: torch.nn.Module, zt: torch.Tensor, xt: torch.Tensor, mt: torch.Tensor) -> dict:
    with torch.no_grad():
        y, yp = m(zt), mp(zt)
    l1 = (y - yp).abs().flatten(1).mean(1)
    return {"l1": round(float(l1.mean()), 4), "l2": round(float((y - yp).pow(2).flatten(1).mean(1).mean()), 5),
            "dsr": round(float((l1 >= DISRUPTED_L1).float().mean()), 3), "face_l1": round(float(masked_l1(y, yp, mt).mean()), 4),
            "err_clean": round(float(masked_l1(y, xt, mt).mean()), 4), "err_poisoned": round(float(masked_l1(yp, xt, mt).mean()), 4)}


def stargan_dsr(x: torch.Tensor, xp: torch.Tensor) -> dict:
    """Our StarGAN's edits of clean vs protected crops ``(N, 3, S, S)`` in [-1, 1], all five domains."""
    from faceshield.deepfake.edit import attribute_probs
    from faceshield.models import create_target

    g = create_target("stargan")
    attrs = attribute_probs((x + 1) / 2)
    d = []
    with torch.no_grad():
        for dom in g.domains:
            c = torch.stack([g.condition(dom, a) for a in attrs])
            d.append((g(xp, c) - g(x, c)).pow(2).flatten(1).mean(1))
    d = torch.cat(d)
    return {"l2": round(float(d.mean()), 5), "dsr": round(float((d >= 0.05).float().mean()), 3)}


def sheet(rows: list[np.ndarray], path: Path) -> None:
    from PIL import Image

    img = np.concatenate([np.concatenate(list(r), 1) for r in rows], 0)
    Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(path)


def to8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pg", default="reenactment", help="the PG: a generator name or a .pt file with its sidecar")
    ap.add_argument("--pg-dagger", default=None, help="the PG trained without the alternating strategy (the † column)")
    ap.add_argument("--videos", nargs="+", default=["WDA_BobMenendez_000.mp4", "WDA_EdMarkey0_000.mp4"],
                    help="people's videos: the PG's own (its sidecar names it; its later frames are held out) and others it never saw")
    ap.add_argument("--archs", nargs="+", default=list(TRANSLATORS))
    ap.add_argument("--iters", type=int, default=600, help="each forger's training steps")
    ap.add_argument("--joint", action="store_true", help="add Fig. 8's joint scenario (generator:initiative, then the PG)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="initiative/reenactment_table2")
    ap.add_argument("--config", type=Path, default=None, help="a YAML file of these settings (keys as the options, with underscores); options given win")
    pre, _ = ap.parse_known_args()
    if pre.config is not None:
        conf = yaml.safe_load(pre.config.read_text()) or {}
        unknown = set(conf) - {x.dest for x in ap._actions}
        if unknown:
            ap.error(f"{pre.config}: unknown settings {', '.join(sorted(unknown))}")
        ap.set_defaults(**conf)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.environ.setdefault("FACESHIELD_DATA", str(DATA))
    t0 = time.time()
    pgs = {"defense": load_pg(a.pg)}
    if a.pg_dagger:
        pgs["defense_dagger"] = load_pg(a.pg_dagger)
    record = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}, "environment": environment(), "disrupted_l1": DISRUPTED_L1, "videos": {}}
    (RESULTS / "initiative").mkdir(parents=True, exist_ok=True)
    md = ["# Initiative Defense against face reenactment (Table 2's shape)", "",
          "`python benchmarks/initiative_reenactment.py " + " ".join(_flag(k, v) for k, v in vars(a).items() if v not in (None, False) and k not in ("name", "config")) + "`",
          "", f"Forgers trained {a.iters} steps each (L1, batch 8); DSR: held-out frames with L1(M(z), M'(z)) >= {DISRUPTED_L1} on [-1, 1]; "
          "err: each model's L1 to the real frame inside the face oval.", ""]
    for video in a.videos:
        vf = video_faces(resolve_video(video), cache=ROOT.parent / "out" / "reenactment")
        tr, te = vf.split(0.2)
        x, z, _ = vf.tensors(tr)
        xt, zt, mt = vf.tensors(te)
        seen = Path(video).name == pgs["defense"].record.get("data", {}).get("video")
        rec = {"frames": len(vf), "train": len(tr), "heldout": len(te), "seen_by_pg": seen, "archs": {}}
        poisoned = {k: poison(g.net, x, g.eps) for k, g in pgs.items()}
        rec["psnr_db"] = {k: psnr(p, x) for k, p in poisoned.items()}
        pics = [to8(xt[:6])]
        for arch in a.archs:
            m = train_translator(arch, x, z, iters=a.iters)
            row = {}
            for k, p in poisoned.items():
                mp = train_translator(arch, p, z, iters=a.iters)
                row[k] = compare(m, mp, zt, xt, mt)
                if arch == "unet" and k == "defense":
                    with torch.no_grad():
                        pics += [to8(m(zt[:6])), to8(mp(zt[:6]))]
            if arch == "unet":
                row["floor"] = compare(m, train_translator(arch, x, z, iters=a.iters, seed=1), zt, xt, mt)
            rec["archs"][arch] = row
            print(video, arch, row, f"{time.time() - t0:.0f}s", flush=True)
        if len(pics) > 1:  # real | M(z) | M'(z) of the first PG: only a run with the unet forger has them
            sheet(pics, RESULTS / "initiative" / f"reenactment_{Path(video).stem}.png")
        if a.joint and seen:
            from faceshield.generators import create_generator

            attr = create_generator("initiative")
            xa = poison(attr.net, xt, attr.eps)  # held-out frames: attribute PG only
            xj = poison(pgs["defense"].net, xa, pgs["defense"].eps)  # then the reenactment PG
            xr = poison(pgs["defense"].net, xt, pgs["defense"].eps)
            tra = poison(attr.net, x, attr.eps)
            trj = poison(pgs["defense"].net, tra, pgs["defense"].eps)
            budget = 2 * max(attr.eps, pgs["defense"].eps)  # one PG's L_inf budget on [-1, 1]
            xb, trb = (c + (j - c).clamp(-budget, budget) for c, j in ((xt, xj), (x, trj)))  # both, projected back onto one budget (on the 8-bit grid)
            m = train_translator("unet", x, z, iters=a.iters)
            rec["joint"] = {
                "stargan": {"attribute_pg": stargan_dsr(xt, xa), "reenactment_pg": stargan_dsr(xt, xr), "both": stargan_dsr(xt, xj), "both_one_budget": stargan_dsr(xt, xb)},
                "reenactment_unet": {"attribute_pg": compare(m, train_translator("unet", tra, z, iters=a.iters), zt, xt, mt),
                                     "reenactment_pg": rec["archs"].get("unet", {}).get("defense"),
                                     "both": compare(m, train_translator("unet", trj, z, iters=a.iters), zt, xt, mt),
                                     "both_one_budget": compare(m, train_translator("unet", trb, z, iters=a.iters), zt, xt, mt)},
                "psnr_db": {"attribute_pg": psnr(xa, xt), "reenactment_pg": psnr(xr, xt), "both": psnr(xj, xt), "both_one_budget": psnr(xb, xt)},
            }
            print("joint", rec["joint"], flush=True)
        record["videos"][video] = rec
        cols = list(pgs) + ["floor"]
        md += [f"## {video} ({'the PG was trained on its other frames' if seen else 'a person the PG never saw'}; "
               f"{len(tr)} training frames, {len(te)} held out; PSNR " + ", ".join(f"{k} {v} dB" for k, v in rec["psnr_db"].items()) + ")", "",
               "| translator | " + " | ".join(f"{c}: DSR | L1 | L2 | err clean → poisoned" for c in cols if any(c in r for r in rec["archs"].values())) + " |",
               "|---|" + "---|---|---|---|" * sum(any(c in r for r in rec["archs"].values()) for c in cols)]
        for arch, row in rec["archs"].items():
            cells = []
            for c in cols:
                if not any(c in r for r in rec["archs"].values()):
                    continue
                v = row.get(c)
                cells.append(" – | – | – | – " if v is None else f" {v['dsr']:.2f} | {v['l1']:.4f} | {v['l2']:.5f} | {v['err_clean']:.3f} → {v['err_poisoned']:.3f} ")
            md.append(f"| {arch}{' (gray-box)' if arch == 'unet' else ''} |" + "|".join(cells) + "|")
        md.append("")
        if "joint" in rec:
            j = rec["joint"]
            md += ["## Joint scenario (Fig. 8): attribute PG, then reenactment PG, on the held-out frames", "",
                   "| protection | PSNR (dB) | StarGAN DSR (L2) | reenactment (unet) DSR (L1) |", "|---|---|---|---|"]
            for k in ("attribute_pg", "reenactment_pg", "both", "both_one_budget"):
                r = j["reenactment_unet"][k] or {}
                md.append(f"| {k} | {j['psnr_db'][k]} | {j['stargan'][k]['dsr']:.2f} ({j['stargan'][k]['l2']:.4f}) | "
                          f"{r.get('dsr', float('nan')):.2f} ({r.get('l1', float('nan')):.4f}) |")
            md.append("")
    record["seconds"] = round(time.time() - t0, 1)
    md.append(f"{record['seconds']:.0f} s on {record['environment']['threads']} thread(s).")
    write(a.name, record, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
