"""Train the "OTD" baseline of MagDR's Table 1 (seed 004, Sec. 4.3): a binary classifier of our
StarGAN's *outputs*, clean (label 0) against disrupted (label 1).

The data set is made here, on the CelebA crop StarGAN was trained on (64 px, [-1, 1],
:func:`~faceshield.training.celeba.load_celeba`), from *training identities* only; the held-out
figures come from the same procedure on the *test identities*. For each face, a random domain ``c``
(its condition from the face's own CelebA labels) and:

* label 0: ``G(x, c)``, the edit of the clean crop;
* label 1: ``G(x_adv, c)``, the edit of the crop disrupted by Ruiz et al.'s PGD *at crop level*
  (untargeted, ``max MSE(G(x_adv, c), G(x, c))``, uniform random start in the eps-ball, sign steps,
  projection), rounded to the 8-bit grid inside the budget as a saved photo would be
  (:func:`~faceshield.attacks.base.quantize_to_budget`). Half the attack batches use Ruiz et al.'s
  setting (eps 0.05 on [-1, 1], step 0.01, 10 iterations); the other half weaker ones (:data:`WEAK`:
  eps 2 to 6 8-bit levels of a [0, 1] photo, 3 or 5 steps of 2 eps / steps), so that the
  classifier is not keyed to one strength.

Then :class:`~faceshield.defenses.otd.OTDNet` (about 210 k parameters) learns ``G(x, c) ->
P(disrupted)`` by binary cross-entropy (Adam, cosine decay, horizontal flips).

Seeded (python, numpy, torch), single process, fixed sizes. The fp16 weights and the sidecar JSON
(config, data digests, loss history, held-out accuracy on the test identities, seconds, machine)
are written with :func:`~faceshield.training.gan.ship_generator`. ``--cache PATH`` keeps the
generated edits (a torch file of tensors) so that a second run trains without re-attacking.

Usage::

    OMP_NUM_THREADS=1 python -m faceshield.training.otd --out out/train/otd64.pt
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceshield.attacks.base import quantize_to_budget
from faceshield.defenses.otd import OTDConfig, OTDNet
from faceshield.training.celeba import CelebA, digest, load_celeba
from faceshield.training.gan import seed_everything, ship_generator

#: Ruiz et al.'s crop-level PGD on [-1, 1]: (eps, step, iterations)
STRONG = (0.05, 0.01, 10)
#: the weaker disruptions: (eps in 8-bit levels of a [0, 1] photo, iterations); step 2 eps / iterations
WEAK = ((2, 3), (3, 3), (4, 5), (5, 5), (6, 5))


@dataclass
class OTDTrainConfig:
    train_faces: int = 1600
    test_faces: int = 300
    attack_batch: int = 32
    epochs: int = 10
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    holdout: float = 0.1
    manipulator: str = "stargan"
    model: dict = field(default_factory=lambda: OTDConfig().to_dict())


HISTORY_COLUMNS = ["epoch", "train_bce", "heldout_acc", "seconds"]


def settings(i: int) -> tuple[str, float, float, int]:
    """The disruption of attack batch ``i``: ``(name, eps, step, iterations)`` on [-1, 1]; even
    batches Ruiz et al.'s :data:`STRONG`, odd ones cycle through :data:`WEAK`."""
    if i % 2 == 0:
        return ("ruiz", *STRONG)
    levels, steps = WEAK[(i // 2) % len(WEAK)]
    eps = 2 * levels / 255
    return (f"weak{levels}x{steps}", eps, 2 * eps / steps, steps)


def crop_pgd(g, x: torch.Tensor, c: torch.Tensor, eps: float, step: float, steps: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Ruiz et al.'s untargeted PGD on crops.

    Args:
        g: the manipulator; x: ``(B, 3, S, S)`` crops in [-1, 1] on the 8-bit grid; c: ``(B, c_dim)``.
        eps, step: L_inf budget and step size on [-1, 1]; steps: iterations; gen: the random start's generator.

    Returns:
        ``(x_adv, ref)``: the disrupted crops ``(B, 3, S, S)`` in [-1, 1], on the 8-bit grid within
        ``floor(eps * 127.5)`` levels of ``x``, and the clean edits ``G(x, c)``.
    """
    with torch.no_grad():
        ref = g(x, c)
    xa = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps).clamp(-1, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = (g(xa, c) - ref).pow(2).mean()
        (grad,) = torch.autograd.grad(loss, xa)
        xa = (x + (xa.detach() + step * grad.sign() - x).clamp(-eps, eps)).clamp(-1, 1)
    return quantize_to_budget((xa + 1) / 2, (x + 1) / 2, eps / 2) * 2 - 1, ref


def make_edits(g, ds: CelebA, n: int, cfg: OTDTrainConfig, rng: np.random.Generator, gen: torch.Generator, what: str) -> dict:
    """The clean and disrupted edits of ``n`` random faces of ``ds``.

    Returns:
        ``{"x": (2n, 3, S, S) float16 edits in [-1, 1], "y": (2n,) float32 labels (1 = disrupted),
        "setting": (2n,) int index into "names" (-1 for clean), "names", "l2": (n,) MSE between the
        clean and the disrupted edit, "index": (n,) the faces of ds, "seconds"}``.
    """
    from faceshield.training.disrupter import conditions

    t0 = time.time()
    pick = np.sort(rng.choice(len(ds), size=min(n, len(ds)), replace=False))
    labels = ds.labels(g.domains)
    xs, ys, sets, l2s, names = [], [], [], [], []
    for i, s in enumerate(range(0, len(pick), cfg.attack_batch)):
        idx = pick[s : s + cfg.attack_batch]
        x = torch.from_numpy(ds.images[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        doms = [g.domains[k] for k in rng.integers(0, len(g.domains), len(idx))]
        c = conditions(g, labels[idx], doms)
        name, eps, step, steps = settings(i)
        if name not in names:
            names.append(name)
        xa, ref = crop_pgd(g, x, c, eps, step, steps, gen)
        with torch.no_grad():
            out = g(xa, c)
        l2s.append((out - ref).pow(2).flatten(1).mean(1))
        xs += [ref.half(), out.half()]
        ys += [torch.zeros(len(idx)), torch.ones(len(idx))]
        sets += [torch.full((len(idx),), -1), torch.full((len(idx),), names.index(name))]
        if i % 10 == 0:
            print(f"{what}: {s + len(idx)}/{len(pick)} faces {time.time() - t0:.0f}s", flush=True)
    return {"x": torch.cat(xs), "y": torch.cat(ys), "setting": torch.cat(sets), "names": names, "l2": torch.cat(l2s),
            "index": torch.from_numpy(pick), "seconds": time.time() - t0}


def tensor_digest(*ts: torch.Tensor) -> str:
    """Short sha256 of tensors' bytes (the generated data set, recorded in the sidecar)."""
    h = hashlib.sha256()
    for t in ts:
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def predict(net: OTDNet, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """``(N,)`` P(disrupted) of ``(N, 3, S, S)`` edits in [-1, 1]."""
    net.eval()
    return torch.cat([torch.sigmoid(net(x[i : i + batch].float())) for i in range(0, len(x), batch)])


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (probability that a positive outranks a negative; ties count half)."""
    pos, neg = p[y > 0.5], p[y <= 0.5]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg)))


def evaluate(net: OTDNet, data: dict) -> dict:
    """Held-out figures: accuracy at P = 0.5, AUC, clean specificity and recall per disruption setting."""
    p = predict(net, data["x"]).numpy()
    y, s = data["y"].numpy(), data["setting"].numpy()
    hit = (p > 0.5) == (y > 0.5)
    l2 = data["l2"].numpy()
    pos_set = s[y > 0.5]
    return {"accuracy": round(float(hit.mean()), 4), "auc": round(auc(p, y), 4), "clean_correct": round(float(hit[y <= 0.5].mean()), 4),
            "recall": {n: round(float(hit[s == k].mean()), 4) for k, n in enumerate(data["names"])},
            "edits_disrupted_l2_0.05": {n: round(float((l2[pos_set == k] >= 0.05).mean()), 4) for k, n in enumerate(data["names"])},
            "images": int(len(y))}


def train(cfg: OTDTrainConfig, out: Path, cache: Path | None = None) -> dict:
    from faceshield.models import create_target

    rng, gen = seed_everything(cfg.seed, cfg.threads)
    t0 = time.time()
    g = create_target(cfg.manipulator)
    tr, te = load_celeba("train", size=g.size, holdout=cfg.holdout, seed=0), load_celeba("test", size=g.size, holdout=cfg.holdout, seed=0)
    if cache is not None and cache.is_file():
        st = torch.load(cache, map_location="cpu", weights_only=True)
        if st["config"] != json.dumps(asdict(cfg) | {"epochs": 0, "batch": 0, "lr": 0, "weight_decay": 0}, sort_keys=True):
            raise ValueError(f"{cache}: made with another configuration; delete it or give another --cache")
        dtr, dte, gen_seconds = st["train"], st["test"], float(st["seconds"])
        rng.bit_generator.state = json.loads(st["rng"])
        gen.set_state(st["gen"])
        cached = True
        print(f"edits read from {cache}", flush=True)
    else:
        cached = False
        dtr = make_edits(g, tr, cfg.train_faces, cfg, rng, gen, "train")
        dte = make_edits(g, te, cfg.test_faces, cfg, rng, gen, "test")
        gen_seconds = time.time() - t0
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"train": dtr, "test": dte, "seconds": gen_seconds, "rng": json.dumps(rng.bit_generator.state), "gen": gen.get_state(),
                        "config": json.dumps(asdict(cfg) | {"epochs": 0, "batch": 0, "lr": 0, "weight_decay": 0}, sort_keys=True)}, cache)
    t1 = time.time()
    mcfg = OTDConfig(**{**cfg.model, "widths": tuple(cfg.model["widths"])})
    net = OTDNet(mcfg)
    opt = torch.optim.Adam(net.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    n = len(dtr["y"])
    per_epoch = n // cfg.batch
    total = cfg.epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    history = []
    for ep in range(cfg.epochs):
        net.train()
        perm = torch.from_numpy(rng.permutation(n))
        run = 0.0
        for i in range(per_epoch):
            idx = perm[i * cfg.batch : (i + 1) * cfg.batch]
            x, y = dtr["x"][idx].float(), dtr["y"][idx]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x[flip] = x[flip].flip(3)
            loss = F.binary_cross_entropy_with_logits(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            run += loss.item()
        acc = evaluate(net, dte)["accuracy"]
        history.append([ep + 1, round(run / per_epoch, 4), acc, round(gen_seconds + time.time() - t1, 1)])
        print(f"epoch {ep + 1}/{cfg.epochs} BCE {history[-1][1]:.4f} held-out accuracy {acc:.4f} {history[-1][3]:.0f}s", flush=True)
    held = evaluate(net, dte)
    sub = lambda ds, idx: CelebA(ds.images[idx], ds.attrs[idx], ds.names, [ds.files[i] for i in idx], ds.identities[idx])  # noqa: E731
    tr_used, te_used = sub(tr, dtr["index"].numpy()), sub(te, dte["index"].numpy())
    meta = {"model": mcfg.to_dict(), "parameters": sum(p.numel() for p in net.parameters()), "output": "logit of disrupted",
            "inputs": f"{cfg.manipulator}'s output crop, {g.size} px, RGB in [-1, 1]",
            "train": asdict(cfg),
            "disruptions": {"strong": {"eps": STRONG[0], "step": STRONG[1], "steps": STRONG[2], "range": "[-1, 1]", "share": 0.5},
                            "weak": [{"eps_levels": lv, "steps": st, "step": f"2 eps / {st}"} for lv, st in WEAK],
                            "attack": "Ruiz et al.'s untargeted PGD at crop level, random start, random domain per face, 8-bit rounded inside the budget"},
            "edits": {"train": {"faces": len(tr_used), "digest": tensor_digest(dtr["x"], dtr["y"]), "celeba_digest": digest(tr_used)},
                      "test": {"faces": len(te_used), "split": "test identities", "digest": tensor_digest(dte["x"], dte["y"]), "celeba_digest": digest(te_used)},
                      "seconds": round(gen_seconds, 1), "from_cache": cached},
            "heldout": held,
            "train_fit": evaluate(net, dtr),
            "history_columns": HISTORY_COLUMNS, "history": history}
    out.parent.mkdir(parents=True, exist_ok=True)
    return ship_generator(out, net, meta, tr_used, cfg.threads, gen_seconds + time.time() - t1, cfg.holdout)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the OTD baseline of MagDR's Table 1: a classifier of StarGAN's outputs, clean vs disrupted "
                                             "(CelebA training identities; held-out accuracy on the test identities).")
    ap.add_argument("--train-faces", type=int, default=1600, help="training faces (each gives a clean and a disrupted edit)")
    ap.add_argument("--test-faces", type=int, default=300, help="held-out faces of the test identities")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None, help="keep / reuse the generated edits in this file (never under src/)")
    ap.add_argument("--out", default="out/train/otd64.pt")
    a = ap.parse_args(argv)
    cfg = OTDTrainConfig(train_faces=a.train_faces, test_faces=a.test_faces, epochs=a.epochs, batch=a.batch, lr=a.lr, seed=a.seed, threads=a.threads)
    meta = train(cfg, Path(a.out), a.cache)
    print(json.dumps({"heldout": meta["heldout"], "seconds": meta["seconds"]}))


if __name__ == "__main__":
    main()
