"""MagDR's distances: zero (or their maximum) for identical outputs, and growing with the difference."""
import torch

from faceshield.defenses import DISTANCES, Distances

GROWS = ("l1", "l2", "linf", "phi1", "phi2", "phi3", "phi4")  # larger = more different
FALLS = ("ssim", "psnr", "cos")


def test_distances_order_identical_small_and_large_changes(astronaut):
    x = torch.from_numpy(astronaut[20:276, 100:356]).permute(2, 0, 1)[None].float() / 127.5 - 1
    x = torch.nn.functional.interpolate(x, size=(64, 64), mode="area")
    g = torch.Generator().manual_seed(0)
    small = (x + 0.02 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    large = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    d = Distances()
    same, s, l = d(x, x), d(x, small), d(x, large)
    assert set(same) == set(DISTANCES) and all(v.shape == (1,) for v in same.values())
    for k in GROWS:
        assert same[k].item() == 0 and 0 < s[k].item() < l[k].item(), k
    assert same["ssim"].item() > 0.999 and same["psnr"].item() == 100 and same["cos"].item() > 0.999
    for k in FALLS:
        assert s[k].item() > l[k].item(), k
    big = torch.nn.functional.interpolate(x, size=(128, 128), mode="bilinear")  # any size: resized for the classifier
    assert d(big, big)["phi1"].item() == 0
