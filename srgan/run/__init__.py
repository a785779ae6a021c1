"""A stage's bookkeeping behind one `Run`: checkpoints and resume, the run folder and its lock,
signals, metrics (jsonl, TensorBoard), validation with its samples, the curves."""
