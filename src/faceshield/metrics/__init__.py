"""NME, SSIM_I, mask-SSIM, PSNR and effective L_inf."""
from faceshield.metrics.image import box_mask, linf_levels, mask_ssim, psnr, ssim, ssim_map
from faceshield.metrics.nme import nme

__all__ = ["box_mask", "linf_levels", "mask_ssim", "nme", "psnr", "ssim", "ssim_map"]
