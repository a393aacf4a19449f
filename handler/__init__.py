"""What goes into the .mar: the model, the preprocessing and the TorchServe handler."""
