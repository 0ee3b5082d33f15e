"""faceshield: protect face photos against DeepFakes and measure how well the protection holds.

Layers (each imports only from the ones below it)::

    cli | benchmark          user surface | the paper's tables from a YAML config (`faceshield bench`)
    pipeline | training      image / video in -> faces -> perturbation -> out (the "protect" layer),
                             evaluation incl. SSIM_W | training of the shipped landmark and swap models
    deepfake                 the DeepFake makers used to measure protections: face swap, face editing
    attacks                  optimisers (FGSM, I-FGSM, MI-FGSM, PGD, DI-MI-FGSM, mixed, C&W), losses
                             (landmark, disruption of editors), EOT
    models                   one registry of targets: landmark extractors (MTCNN, dlib, ...),
                             manipulators (StarGAN, GANimation), DeepFake detectors (MesoNet, ours)
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
    if name == "manipulate":
        from faceshield.deepfake import edit

        return edit.manipulate
    if name in ("create_extractor", "list_extractors", "create_target", "list_targets"):
        from faceshield.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'faceshield' has no attribute {name!r}")
