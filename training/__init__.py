"""Training the digit model: data, training loop, canvas-style evaluation, archiving."""
