"""TorchServe handler: requests -> MNIST-style preprocessing -> DigitNet -> one JSON answer per request.

Each request carries one image in one of three forms: the raw PNG/JPEG body, a multipart form field `data`, or JSON
{"image": "<base64 or data: URL>"}. With the header `X-Preview: 1` (or JSON "preview": true, or a multipart
field `preview=1`) the answer also holds the 28x28 image the model saw, as a base64 PNG. (TorchServe 0.12 does not
hand query parameters to handlers, so `?preview=1` cannot work.) A bad request in a batch gets its own 4xx and
JSON {"error": ...}; the rest of the batch is answered normally and the worker keeps running.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
from pathlib import Path

import torch
from ts.torch_handler.base_handler import BaseHandler

try:  # the repository layout (tests, UI)
    from handler.inputs import TRUTHY, Item, parse_request
    from handler.preprocess import PreprocessError, prepare
except ImportError:  # inside the .mar, every file sits flat in the model directory
    from inputs import TRUTHY, Item, parse_request
    from preprocess import PreprocessError, prepare

logger = logging.getLogger(__name__)
ARCHITECTURE_FILE = "architecture.json"


class MNISTDigitHandler(BaseHandler):
    """Classify hand-drawn digits; answers digit, confidence, ten probabilities and the model's name and version."""

    def initialize(self, context) -> None:
        # One intra-op thread per worker: with batches of at most 16 tiny images, a second thread costs more in
        # synchronisation than it gains and competes with the frontend and the page for 2 cores (`make bench`).
        # TORCH_NUM_THREADS overrides it (e.g. on bigger machines, or with several workers).
        torch.set_num_threads(int(os.environ.get("TORCH_NUM_THREADS", "1")))
        super().initialize(context)
        logger.info("torch intra-op threads: %d", torch.get_num_threads())

    def _load_pickled_model(self, model_dir, model_file, model_pt_path):
        """BaseHandler builds the model class with no arguments; an archive whose architecture differs from the
        defaults (2.0: an ensemble) carries the constructor's keyword arguments in architecture.json."""
        module = importlib.import_module(Path(model_file).stem)
        spec = Path(model_dir) / ARCHITECTURE_FILE
        kwargs = json.loads(spec.read_text()) if spec.exists() else {}
        model = module.DigitNet(**kwargs)
        model.load_state_dict(torch.load(model_pt_path, map_location=self.device, weights_only=True))
        logger.info("model %s built with %s", model_file, kwargs or "its defaults")
        return model

    def _header(self, index: int, name: str) -> str:
        """A request header, whatever case the client used (TorchServe keeps the client's spelling)."""
        if index >= len(self.context.request_processor):  # KServe: several instances share one request
            return ""
        headers = self.context.request_processor[index].get_request_properties() or {}
        return next((str(value) for key, value in headers.items() if key.lower() == name), "")

    def preprocess(self, data: list[dict]) -> list[Item]:
        items = []
        for index, row in enumerate(data):
            try:
                image, preview = parse_request(row)
                preview = preview or self._header(index, "x-preview").lower() in TRUTHY
                items.append(Item(prepared=prepare(image), preview=preview))
            except PreprocessError as exc:
                items.append(Item(error=exc))
        return items

    def inference(self, items: list[Item], *args, **kwargs) -> tuple[list[Item], torch.Tensor | None]:
        good = [item.prepared.tensor() for item in items if item.prepared is not None]
        if not good:
            return items, None
        with torch.inference_mode():
            logits = self.model(torch.stack(good).to(self.device))  # (n_good, outputs)
            # The digits only: a network with an 11th "not a digit" output (DigitNet.digit_logits) still answers with
            # ten probabilities that sum to 1.
            probabilities = torch.softmax(logits[:, :10].float(), dim=1).cpu()  # (n_good, 10)
        return items, probabilities

    def postprocess(self, output: tuple[list[Item], torch.Tensor | None]) -> list[dict]:
        items, probabilities = output
        model = self.manifest["model"]
        answers, row = [], 0
        for index, item in enumerate(items):
            # Rows and requests are the same, except under KServe's envelope, where one request carries several
            # instances: then the status and type stay the request's, and an error is reported in its prediction.
            own_request = index < len(self.context.request_processor)
            if own_request:
                self.context.set_response_content_type(index, "application/json")
            if item.error is not None:
                message = str(item.error)
                if own_request:
                    self.context.set_response_status(item.error.status, message, idx=index)
                answers.append({"error": message, "status": item.error.status})
                continue
            p = probabilities[row]
            row += 1
            answer = {
                "digit": int(p.argmax()),
                "confidence": float(p.max()),
                "probabilities": [float(v) for v in p],
                "model_name": model.get("modelName"),
                "model_version": model.get("modelVersion"),
            }
            if item.preview:
                answer["preview"] = base64.b64encode(item.prepared.png()).decode("ascii")
            answers.append(answer)
        return answers
