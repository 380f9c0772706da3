"""Image reconstruction metrics of the pixel-shuffle task: PSNR and SSIM, per image, in float64."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from randmix_bench.errors import RandmixError

__all__ = ["PSNR_MAX_DB", "psnr", "ssim"]

PSNR_MAX_DB = 100.0
"""PSNR of an exact reconstruction: the MSE is clamped at 1e-10, so the mean over images stays finite."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB (float64) of [N, C, H, W] images, capped at :data:`PSNR_MAX_DB` for exact matches."""
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1).clamp_min(1e-10 * data_range**2)
    return 10 * torch.log10(data_range**2 / mse)


def _gaussian_blur_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of each channel, 'valid' region only (no padding assumptions)."""
    c, k = x.shape[1], len(window)
    x = F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM of [N, C, H, W] images (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03, population statistics, averaged over the valid window positions and channels
    (what skimage's ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)`` computes).
    Computed in float64: in float32, E[x^2] - E[x]^2 cancels badly and moves SSIM by ~1e-4."""
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise RandmixError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(x.shape[-2:])}")
    x, y = x.double(), y.double()
    r = torch.arange(SSIM_WINDOW, device=x.device, dtype=torch.float64) - SSIM_WINDOW // 2
    window = torch.exp(-(r**2) / (2 * SSIM_SIGMA**2))
    window = window / window.sum()
    mu_x, mu_y = _gaussian_blur_valid(x, window), _gaussian_blur_valid(y, window)
    var_x = _gaussian_blur_valid(x * x, window) - mu_x**2
    var_y = _gaussian_blur_valid(y * y, window) - mu_y**2
    cov = _gaussian_blur_valid(x * y, window) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(1)
