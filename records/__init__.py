"""The records every layer shares: the model's answers, the stored predictions and numbers, the statistics, the model
versions, and the errors the pages show. Plain frozen dataclasses and exception classes that import nothing of ours.

Why a layer of their own: the model's answer travels from serving/ (which parses it) through app/ (which records it)
into db/ (which stores it) and up to the pages (ui/), which show it. Defined in serving/ or db/, the pages would have
to reach into a service, or have app/ hand the services' names on (a re-export hides the dependency it is); defined
here, under every layer, each imports the one definition where it is (tests/test_layers.py).

    predictions.py   Prediction (the model's answer), StoredPrediction (that answer as kept), check_digit
    numbers.py       DigitReading, NumberReading (the model's reading of a number), NumberDigit, StoredNumber
    explanations.py  FieldBox, Explanation, AllExplanations
    stats.py         Accuracy, VersionStats, NumberStats, Stats
    versions.py      Worker, Version (a loaded model version as TorchServe describes it)
    errors.py        what the services raise and the pages catch: the model's, the database's, the journal's
"""
