"""faceshield: protect face photos against DeepFakes and measure how well the protection holds.

Layers (each imports only from the ones below it)::

    cli                      user surface
    pipeline                 image in -> faces -> perturbation -> image out (the "protect" layer)
    attacks                  optimisers (FGSM, I-FGSM, MI-FGSM, PGD) and losses
    models                   registry of landmark extractors (MTCNN, dlib, ...)
    metrics | io | core      NME, SSIM, PSNR, L_inf | image reading/writing | types and checks

Inside, images are float32 RGB tensors ``(B, 3, H, W)`` in ``[0, 1]``.
"""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import faceshield` cheap
    if name in ("protect", "evaluate", "protect_image", "evaluate_images"):
        from faceshield.pipeline import api

        return getattr(api, name)
    if name in ("create_extractor", "list_extractors"):
        from faceshield.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'faceshield' has no attribute {name!r}")
