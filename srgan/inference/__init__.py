"""Using a trained generator: weights, tiled upscaling, export, the shipped models."""
