"""Learned perturbation generators at protection time: one forward pass per face, behind the same
call as the iterative attacks (``perturber(x, mask, seed=) -> x_adv``)."""
from faceshield.generators.apply import GeneratorPerturber, create_generator

__all__ = ["GeneratorPerturber", "create_generator"]
