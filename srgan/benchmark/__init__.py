"""Speed: this machine's ceilings, training-step and data-pipeline measurements."""
