"""Images in, training batches out: reading, MATLAB imresize, degradation, crops, sample data."""
