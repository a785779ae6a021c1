"""The two-stage schedule: config, one step of each stage, the loop, checkpoints, logs."""
