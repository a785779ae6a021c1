"""PSNR and SSIM as computed in the standard SR evaluation protocol.

The protocol (used by SRGAN, EDSR, BasicSR, ...) measures on the Y channel of BT.601 YCbCr after
shaving `scale` pixels from every border; SSIM is the MATLAB reference implementation of
Wang et al. (11x11 Gaussian window, sigma 1.5, 'valid' filtering, mean of the SSIM map), which
scikit-image's `structural_similarity` computes with the settings `ssim` passes (equal to 5e-16
on Set5/Set14; tests/test_metrics.py cross-checks it against a direct implementation of the
definition). All math is float64 on the 0..255 scale.
"""

import numpy as np

SSIM_WINDOW = 11  # the side of the Gaussian window of sigma 1.5 (scikit-image truncates at 3.5)
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB on 0..255 -> float64 HxW BT.601 luma in the 16..235 range (unrounded)."""
    rgb = image.astype(np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def luma(image: np.ndarray) -> np.ndarray:
    """The plane the protocol measures, float64: BT.601 Y (16..235, unrounded) of an HxWx3 RGB
    image, a gray HxW image's own values (as MATLAB's protocol scores gray images)."""
    return rgb_to_y(image) if image.ndim == 3 else image.astype(np.float64)


def gray_from_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB -> float64 HxW BT.601 luma 0.299R + 0.587G + 0.114B, no offset or scaling.

    Used to turn a model's RGB output back into a gray image when the HR image is grayscale.
    """
    rgb = image.astype(np.float64)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Same weights written relative to R (0.299 = 1 - 0.587 - 0.114), so that a gray pixel
    # (R = G = B) comes back exactly instead of off by a rounding error of the weight sum.
    return red + 0.587 * (green - red) + 0.114 * (blue - red)


def shave(image: np.ndarray, crop_border: int) -> np.ndarray:
    """Remove `crop_border` pixels from each side of H and W."""
    if crop_border == 0:
        return image
    return image[crop_border:-crop_border, crop_border:-crop_border]


def psnr(image_a: np.ndarray, image_b: np.ndarray, crop_border: int = 0) -> float:
    """PSNR in dB with peak 255, after shaving `crop_border` pixels; inf for identical images."""
    if image_a.shape != image_b.shape:
        raise ValueError(f"shape mismatch: {image_a.shape} vs {image_b.shape}")
    a = shave(image_a, crop_border).astype(np.float64)
    b = shave(image_b, crop_border).astype(np.float64)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(DATA_RANGE**2 / mse))


def ssim(image_a: np.ndarray, image_b: np.ndarray, crop_border: int = 0) -> float:
    """SSIM after shaving `crop_border` pixels; HxWxC images give the mean over channels."""
    if image_a.shape != image_b.shape:
        raise ValueError(f"shape mismatch: {image_a.shape} vs {image_b.shape}")
    a = shave(image_a, crop_border).astype(np.float64)
    b = shave(image_b, crop_border).astype(np.float64)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(
            f"image {a.shape[:2]} is smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} window"
        )
    # Imported here: the package (and torch.hub's import of it) must load without scikit-image.
    from skimage.metrics import structural_similarity

    # Population (not sample) covariances and the Gaussian window make this ssim.m: the SSIM map
    # is averaged over the pixels whose window lies inside the image, each channel on its own.
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            K1=SSIM_K1,
            K2=SSIM_K2,
            data_range=DATA_RANGE,
            channel_axis=None if a.ndim == 2 else 2,
        )
    )


def image_metrics(sr_image: np.ndarray, hr_image: np.ndarray, crop_border: int) -> dict[str, float]:
    """PSNR/SSIM on Y and on RGB for two uint8 images of the same shape (HxWx3 or gray HxW).

    A gray image's values are used as its Y channel as they stand (no 16..235 scaling), as the
    MATLAB protocol does, and its RGB metrics equal the gray ones.
    """
    if sr_image.shape != hr_image.shape:
        raise ValueError(f"shape mismatch: SR {sr_image.shape} vs HR {hr_image.shape}")
    sr_y, hr_y = luma(sr_image), luma(hr_image)
    psnr_y = psnr(sr_y, hr_y, crop_border)
    ssim_y = ssim(sr_y, hr_y, crop_border)
    if sr_image.ndim == 2:
        return {"psnr_y": psnr_y, "ssim_y": ssim_y, "psnr_rgb": psnr_y, "ssim_rgb": ssim_y}
    return {
        "psnr_y": psnr_y,
        "ssim_y": ssim_y,
        "psnr_rgb": psnr(sr_image, hr_image, crop_border),
        "ssim_rgb": ssim(sr_image, hr_image, crop_border),
    }
