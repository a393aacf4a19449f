"""The NiceGUI web app (the page people use) and its settings."""
