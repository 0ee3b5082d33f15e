"""faceshield: protect face photos against DeepFakes and measure how well the protection holds.

Layers (each imports only from the ones below it)::

    cli | benchmark          user surface | the paper's tables from a YAML config (`faceshield bench`)
    pipeline | training      image / video in -> faces -> perturbation -> out (the "protect" layer),
                             evaluation incl. SSIM_W | training of the shipped landmark and swap models
    deepfake                 the face-swap DeepFake maker used to measure protections
    attacks                  optimisers (FGSM, I-FGSM, MI-FGSM, PGD, DI-MI-FGSM, mixed), losses, EOT
    models                   registry of landmark extractors (MTCNN, dlib, ...)
    faces                    crops, alignment, blending mask, colour transfer, smoothing, plausibility
    metrics | io | transforms | core
                             NME, SSIM, PSNR, L_inf | image and video reading/writing |
                             JPEG, resize, blur, video codecs (import only core) | types and checks

Inside, images are float32 RGB tensors ``(B, 3, H, W)`` in ``[0, 1]``.
"""

__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import faceshield` cheap
    if name in ("protect", "evaluate", "protect_video", "protect_videos"):
        from faceshield.pipeline import api

        return getattr(api, name)
    if name in ("create_extractor", "list_extractors"):
        from faceshield.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'faceshield' has no attribute {name!r}")
