"""Datasets: the catalogue, checksummed resumable downloads, installation."""
