"""The evaluation protocol: PSNR/SSIM, NIQE, grid score, comparison pictures and result tables."""
