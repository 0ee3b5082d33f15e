"""Training scripts for faceshield's own models (development tools, never imported at run time).

* :mod:`faceshield.training.landmarks` - compact FAN / HRNet 68-point heat-map models on the
  300-W-format data of ``../shared/data/landmarks68`` (``faceshield train-landmarks``).
"""
