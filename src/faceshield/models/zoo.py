"""Registry entries of the targets that are not landmark extractors: the manipulators we train
(StarGAN-class, GANimation-class; the official StarGAN checkpoint through ``weights=``), the
MesoNet detectors (the authors' weights, never shipped) and our own detector; plus the attribute
classifier that scores edits (not a target).

Weights: our trained models are package data with a JSON sidecar (architecture, training record);
a user file is given as ``weights=PATH`` or an environment variable. A file of the wrong shape or
format raises ``ValueError`` naming it and what was expected.
"""
from __future__ import annotations

import dataclasses

import json
from pathlib import Path

from faceshield.core.types import TargetKind
from faceshield.models.manipulator import EXPRESSION_AUS, STARGAN_DOMAINS, DeepfakeDetector, GANimationEditor, StarGANEditor, TargetInfo, load_generator_state
from faceshield.models.registry import register_target
from faceshield.models.weights import resolve_weights

STARGAN_INFO = TargetInfo(
    name="stargan",
    kind=TargetKind.MANIPULATOR,
    weights="ours (faceshield.training.stargan on CelebA, package data stargan64.pt); the official 200000-G.ckpt via weights= or $FACESHIELD_STARGAN",
    description="StarGAN attribute editor (Choi et al. 2018): hair colour, gender, age",
    inputs="aligned CelebA crop, 64 px (official: 128 px), RGB in [-1, 1]; 5 binary conditions",
    domains=STARGAN_DOMAINS,
)


def _sidecar(path: Path) -> dict | None:
    side = path.with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else None


def _load_strict(net, sd: dict, path: Path, what: str, expect: str):
    """``net`` with the state dict ``sd`` of ``path`` loaded strictly; a mismatch is a ValueError
    naming the file, the first mismatch and what was expected."""
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        lines = str(e).splitlines()
        first = lines[1].strip() if len(lines) > 1 else str(e)
        raise ValueError(f"{path}: does not fit the {what} ({first}); expected {expect}") from None
    return net


@register_target(STARGAN_INFO)
def stargan(weights: str | None = None) -> StarGANEditor:
    from faceshield.models.stargan import StarGANConfig, StarGANGenerator, official_config

    path = resolve_weights("StarGAN generator", path=weights, env="FACESHIELD_STARGAN", package_file="stargan64.pt",
                           hint="train one with `python -m faceshield.training.stargan` or give the official 200000-G.ckpt")
    expect = "a StarGAN generator state dict (ours with its .json sidecar, or the official 200000-G.ckpt)"
    sd = load_generator_state(path, expect)
    meta = _sidecar(path)
    try:
        cfg = StarGANConfig(**meta["model"]) if meta and "model" in meta else official_config(sd)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}; expected {expect}") from None
    domains = tuple(meta["domains"]) if meta and meta.get("domains") else STARGAN_DOMAINS
    if cfg.c_dim != len(domains):
        raise ValueError(f"{path}: a StarGAN generator with {cfg.c_dim} conditions; expected {len(domains)} (the CelebA domains {', '.join(domains)})")
    g = _load_strict(StarGANGenerator(cfg), sd, path, "StarGAN generator", expect)
    info = STARGAN_INFO if domains == STARGAN_DOMAINS else dataclasses.replace(STARGAN_INFO, domains=domains)
    return StarGANEditor(g, info, cfg.size)


GANIMATION_INFO = TargetInfo(
    name="ganimation",
    kind=TargetKind.MANIPULATOR,
    weights="ours (faceshield.training.ganimation on CelebA, package data ganimation64.pt); $FACESHIELD_GANIMATION",
    description="GANimation-class expression editor (Pumarola et al. 2018): attention and colour masks, continuous conditions",
    inputs="aligned CelebA crop, 64 px, RGB in [-1, 1]; 2 intensities in [0, 1] (Smiling, Mouth_Slightly_Open)",
    domains=EXPRESSION_AUS,
)


@register_target(GANIMATION_INFO)
def ganimation(weights: str | None = None) -> GANimationEditor:
    from faceshield.models.ganimation import GANimationConfig, GANimationGenerator

    path = resolve_weights("GANimation-class generator", path=weights, env="FACESHIELD_GANIMATION", package_file="ganimation64.pt",
                           hint="train one with `python -m faceshield.training.ganimation`")
    expect = "a GANimation-class generator state dict written by faceshield.training.ganimation, with its .json sidecar"
    sd = load_generator_state(path, expect)
    meta = _sidecar(path)
    if not meta or "model" not in meta:
        raise ValueError(f"{path}: the .json sidecar with the model configuration is missing; expected {expect}")
    g = _load_strict(GANimationGenerator(GANimationConfig(**meta["model"])), sd, path, "GANimation-class generator", expect)
    return GANimationEditor(g, GANIMATION_INFO, g.config.size)


def _mesonet_entry(variant: str, title: str) -> None:
    info = TargetInfo(
        name=variant.replace("_", "-"),
        kind=TargetKind.DETECTOR,
        weights="the authors' Keras HDF5 (DariusAf/MesoNet, Apache-2.0) via weights= or $FACESHIELD_MESONET_DIR; never shipped",
        description=f"MesoNet {title} DeepFake detector (Afchar et al. 2018)",
        inputs="face crop resized to 256 px, RGB in [0, 1]; output: logit of real",
    )

    @register_target(info)
    def factory(weights: str | None = None) -> DeepfakeDetector:
        from faceshield.models.mesonet import INPUT_SIZE, load_mesonet

        return DeepfakeDetector(load_mesonet(variant, weights), info, INPUT_SIZE)


for _v, _t in (("meso4_df", "Meso4 (DF)"), ("meso4_f2f", "Meso4 (F2F)"), ("mesoinception_df", "MesoInception4 (DF)"), ("mesoinception_f2f", "MesoInception4 (F2F)")):
    _mesonet_entry(_v, _t)


RESNET_SWAP_INFO = TargetInfo(
    name="resnet-swap",
    kind=TargetKind.DETECTOR,
    weights="ours (faceshield.training.detector on real frames vs our face swaps, package data resnet_swap_detector.pt); $FACESHIELD_SWAP_DETECTOR",
    description="ResNet-18-class DeepFake detector trained from scratch on our face swaps; has never seen an editor's output",
    inputs="face crop resized to 128 px, RGB in [0, 1]; output: logit of real",
)


@register_target(RESNET_SWAP_INFO)
def resnet_swap(weights: str | None = None) -> DeepfakeDetector:
    from faceshield.models.resnet_detector import load_resnet_detector

    path = resolve_weights("ResNet face-swap detector", path=weights, env="FACESHIELD_SWAP_DETECTOR", package_file="resnet_swap_detector.pt",
                           hint="train it with `python -m faceshield.training.detector`")
    net = load_resnet_detector(path)
    return DeepfakeDetector(net, RESNET_SWAP_INFO, net.config.size)


def load_attribute_classifier(weights: str | None = None):
    """The CelebA 40-attribute classifier (package data ``celeba_attr64.pt``) and its attribute
    names: ``(model in eval mode, names)``."""
    from faceshield.models.classifier import AttributeClassifier, ClassifierConfig
    from faceshield.models.weights import load_state_dict

    path = resolve_weights("CelebA attribute classifier", path=weights, env="FACESHIELD_ATTR_CLASSIFIER", package_file="celeba_attr64.pt",
                           hint="train it with `python -m faceshield.training.classifier`")
    meta = _sidecar(path) or {}
    sd = {k: v.float() if v.is_floating_point() else v for k, v in load_state_dict(path).items()}
    model = _load_strict(AttributeClassifier(ClassifierConfig(**meta.get("model", {}))), sd, path, "attribute classifier",
                         "a state dict written by faceshield.training.classifier")
    return model.eval(), list(meta.get("attributes", []))


def load_perturbation_generator(path, info: TargetInfo):
    """A :class:`~faceshield.models.perturber.PerturbationGenerator` from a state dict written by
    :mod:`faceshield.training.disrupter` and its ``.json`` sidecar (architecture, budget, record).

    Raises:
        ValueError: no sidecar, or a state dict that does not fit it (naming the file).
    """
    from faceshield.models.perturber import PerturbationGenerator, PerturbationNet, PerturberConfig

    path = Path(path)
    expect = "a perturbation generator state dict written by faceshield.training.disrupter, with its .json sidecar"
    sd = load_generator_state(path, expect)
    meta = _sidecar(path)
    if not meta or "model" not in meta or "eps_levels" not in meta:
        raise ValueError(f"{path}: the .json sidecar with the model configuration and its eps_levels is missing; expected {expect}")
    try:
        cfg = PerturberConfig(**meta["model"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}; expected {expect}") from None
    net = _load_strict(PerturbationNet(cfg), sd, path, "perturbation generator", expect)
    return PerturbationGenerator(net, info, float(meta["eps_levels"]) / 255.0, meta)


#: the registry entries of the generators, by name.
GENERATOR_INFOS: dict[str, TargetInfo] = {}


def _generator_entry(name: str, package_file: str, env: str, trained_against: tuple[str, ...], description: str, script: str, data: str = "CelebA",
                     crop: str = "aligned CelebA crop, 64 px") -> None:
    info = GENERATOR_INFOS[name] = TargetInfo(
        name=name,
        kind=TargetKind.GENERATOR,
        weights=f"ours ({script} on {data}, package data {package_file}); ${env}",
        description=description,
        inputs=f"{crop}, RGB in [0, 1]; output: a perturbation within its eps (one forward pass)",
        trained_against=trained_against,
    )

    @register_target(info)
    def factory(weights: str | None = None):
        path = resolve_weights(f"{name} perturbation generator", path=weights, env=env, package_file=package_file, hint=f"train it with `python -m {script}`")
        return load_perturbation_generator(path, info)


_generator_entry("disrupter-stargan", "disrupter_stargan64.pt", "FACESHIELD_DISRUPTER", ("stargan", "meso4-df"),
                 "DeepFake Disrupter (seed 002, Eq. 7): distorts StarGAN's edits of the protected face for every domain, makes the edits "
                 "look fake to Meso4 (DF) and the protected face real", "faceshield.training.disrupter")
_generator_entry("breaker-landmarks", "breaker_landmarks256.pt", "FACESHIELD_LANDMARK_GENERATOR", ("mtcnn", "fan"),
                 "Landmark Breaker as a generator (beyond seed 002): Eq. 7's training with the Landmark Breaker losses of MTCNN and FAN "
                 "in place of the editor, at the face's own resolution, eps 15 (visible; --eps scales it down)", "faceshield.training.disrupter",
                 data="the landmarks68 train photos", crop="aligned face crop at the face's own resolution (128-256 px)")
_generator_entry("initiative", "initiative64.pt", "FACESHIELD_INITIATIVE", ("surrogate",),
                 "Initiative Defense (seed 003, Alg. 1): a poison generator trained alternately with its own surrogate editor, never "
                 "against the shipped StarGAN", "faceshield.training.initiative")
_generator_entry("reenactment", "reenactment64.pt", "FACESHIELD_REENACTMENT", ("reenactment-surrogate",),
                 "Initiative Defense against face reenactment (seed 003, Eq. 11): poisons a person's video so that a landmark-to-face "
                 "translator trained on it renders them badly; trained against its own surrogate translator (the † variant: it measured better)", "faceshield.training.reenactment",
                 data="one person's video")
_generator_entry("combined", "combined64.pt", "FACESHIELD_GENERATOR", ("stargan", "meso4-df", "mtcnn", "fan"),
                 "one forward pass against both kinds of DeepFake step: StarGAN's edits disrupted (and caught by Meso4 (DF)) and "
                 "MTCNN's and FAN's landmarks broken", "faceshield.training.disrupter")
