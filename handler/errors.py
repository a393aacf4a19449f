"""What preprocessing refuses, each with the HTTP status the handler answers it with; the message is for the user.

A module of its own because the drawing path (preprocess.py), the photo path (photos.py) and the number reader
(segmentation.py) all raise them, and the photo path must not import the module that imports it.
"""


class PreprocessError(ValueError):
    """The image cannot be turned into a digit; the message is meant for the user."""

    status = 400


class BlankImageError(PreprocessError):
    """The image has no ink (an empty or uniformly filled canvas)."""

    status = 422


class NoDigitFoundError(BlankImageError):
    """A photo or scan of paper in which no digit-like ink was found (blank paper, rules only, a shadow)."""


class ImageTooLargeError(PreprocessError):
    """The image has too many pixels to decode safely."""

    status = 413
