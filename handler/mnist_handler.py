"""TorchServe handler: requests -> MNIST-style preprocessing -> DigitNet -> one JSON answer per request.

Each request carries one image in one of three forms: the raw PNG/JPEG body, a multipart form field `data`, or JSON
{"image": "<base64 or data: URL>"}. With the header `X-Preview: 1` (or JSON "preview": true, or a multipart
field `preview=1`) the answer also holds the 28x28 image the model saw, as a base64 PNG. (TorchServe 0.12 does not
hand query parameters to handlers, so `?preview=1` cannot work.) A bad request in a batch gets its own 4xx and
JSON {"error": ...}; the rest of the batch is answered normally and the worker keeps running.

`POST /explanations/mnist[/VERSION]` takes the same forms and answers the prediction plus `target` (the digit
explained: the predicted one, or JSON "target": 3 / multipart field target=3 / header `X-Target: 3`; anything but
0-9 is a 400), `attributions` (28 rows of 28 floats: Integrated Gradients over the image the model saw, handler/
explain.py) and `field_box` (where that 28x28 image sits over the drawing, in its pixel coordinates).

With the header `X-Read: number` (or JSON "read": "number", or a multipart field `read=number`) a request is read as
a number of one or more digits (handler/segmentation.py): HTTP 200 {"number": "42", "digits": [{"digit", "confidence",
"probabilities", "box": [left, top, right, bottom]}, ...], "model_name", "model_version"}; "number" is null, with
"not_a_digit": true and a "reason", when no number can be read. The candidate digits of every number request in a
batch go through the model in one batch with the batch's single digits; with a pair reader in the archive (pairs.pt,
handler/model.py), the wide candidates of all of them go through it in one more batch (two touching digits read as
one pair).

A version whose archive carries refusal.json (handler/refusal.py) may answer a drawing that is not one digit with
HTTP 200 {"not_a_digit": true, "digit": null, "reason": ..., "closest_digit": ..., "probabilities": [...]}; its other
answers then carry "not_a_digit": false. Versions without the file answer as before.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from ts.torch_handler.base_handler import BaseHandler

# Decided by how this file was imported, not by whether `handler` imports: an editable install of another checkout
# makes `handler` importable inside a TorchServe worker, and classes from two copies (PreprocessError) do not match.
if TYPE_CHECKING or __package__:  # the repository layout (tests, UI; and what mypy checks)
    from .explain import STEPS, as_rows, integrated_gradients, integrated_gradients_all
    from .inputs import ALL, TRUTHY, Item, RequestError, parse_target, read_request
    from .model import ARCHITECTURE_FILE, PAIRS_FILE, for_inference, load_pair_net
    from .preprocess import PreprocessError, prepare, to_png
    from .refusal import NOT_A_DIGIT_INDEX, RefusalPolicy
    from .segmentation import pair_field, pair_log_probs, prepare_number, reading
else:  # inside the .mar, every file sits flat in the model directory
    from explain import STEPS, as_rows, integrated_gradients, integrated_gradients_all
    from inputs import ALL, TRUTHY, Item, RequestError, parse_target, read_request
    from model import ARCHITECTURE_FILE, PAIRS_FILE, for_inference, load_pair_net
    from preprocess import PreprocessError, prepare, to_png
    from refusal import NOT_A_DIGIT_INDEX, RefusalPolicy
    from segmentation import pair_field, pair_log_probs, prepare_number, reading

logger = logging.getLogger(__name__)
# An error message goes back as TorchServe's status line and in the JSON body. The worker frames the status message
# with its length in characters, so a non-ASCII character (a request's own field name or target echoed in it) made the
# frame longer than announced: the frontend read garbage, closed the connection and failed the whole batch ("Worker
# died"; docs/security.md N3). Messages are therefore ASCII (other characters as Python escapes) and bounded.
MAX_MESSAGE = 300
Output = tuple[list[Item], torch.Tensor | None, torch.Tensor | None]  # what inference hands postprocess


def safe_message(text: str) -> str:
    """`text` as printable ASCII (other characters escaped like Python does), at most MAX_MESSAGE characters."""
    escaped = "".join(ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return escaped if len(escaped) <= MAX_MESSAGE else escaped[: MAX_MESSAGE - 3] + "..."


class MNISTDigitHandler(BaseHandler):
    """Classify hand-drawn digits; answers digit, confidence, ten probabilities and the model's name and version."""

    def initialize(self, context) -> None:
        # One intra-op thread per worker: with batches of at most 16 tiny images, a second thread costs more in
        # synchronisation than it gains and competes with the frontend and the page for 2 cores (`make bench`).
        # TORCH_NUM_THREADS overrides it (e.g. on bigger machines, or with several workers).
        torch.set_num_threads(int(os.environ.get("TORCH_NUM_THREADS", "1")))
        super().initialize(context)
        # The forward passes run on an optimised copy (the same logits to ~1e-5, ~40% less time); explanations need
        # gradients and use self.model.
        self.forward = for_inference(self.model)
        model_dir = context.system_properties.get("model_dir")
        self.refusal = RefusalPolicy.load(model_dir)
        logger.info("refusal policy: %s", self.refusal)
        # Number mode's pair reader, when the archive carries one: two touching digits read as one pair
        pairs = load_pair_net(Path(model_dir) / PAIRS_FILE) if model_dir else None
        self.pair_forward = for_inference(pairs) if pairs is not None else None
        logger.info("pair reader: %s", "yes" if pairs is not None else "none")
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
        return [self._item(index, row) for index, row in enumerate(data)]

    def _item(self, index: int, row) -> Item:
        """One request -> its prepared image and model input, or its error. Every per-request step runs here, so
        that nothing one request sends can fail the batch it shares with others (TorchServe answers 503 to a whole
        batch when the handler raises)."""
        try:
            request = read_request(row)
            preview = request.preview or self._header(index, "x-preview").lower() in TRUTHY
            # TorchServe marks each /explanations request with the header explain=True (BaseHandler looks at the
            # first request only; a batch can mix both kinds, so every request is asked)
            explain = self._header(index, "explain") == "True"
            asked = request.target if request.target is not None else self._header(index, "x-target")
            target = parse_target(asked) if explain else None
            if self._reads_number(index, request.read, explain=explain):
                number = prepare_number(request.image)
                wide, pair_inputs = number.pair_inputs() if self.pair_forward is not None else ([], None)
                return Item(number=number, tensor=number.tensors(), preview=preview, wide=wide, pair_inputs=pair_inputs)
            prepared = prepare(request.image)
            return Item(prepared=prepared, preview=preview, tensor=prepared.tensor(), explain=explain, target=target)
        except PreprocessError as exc:
            return Item(error=exc)
        except Exception as exc:  # the isolation boundary: an unforeseen failure is this request's alone
            logger.warning("request %d refused, unexpected %s while reading it: %.200s", index, type(exc).__name__, exc)
            return Item(error=RequestError(f"the request could not be read ({type(exc).__name__})"))

    def _reads_number(self, index: int, asked: str, *, explain: bool) -> bool:
        """Whether the request asks for a number (X-Read: number, JSON or form field read=number)."""
        mode = (asked or self._header(index, "x-read")).strip().lower()
        if mode not in ("", "digit", "number"):
            raise RequestError(f'read must be "number" or "digit", not {mode[:20]!r}')
        if mode == "number" and explain:
            raise RequestError("explanations are for one digit: send the request without read=number")
        return mode == "number"

    def inference(self, items: list[Item], *args, **kwargs) -> Output:
        """-> (items, digit probabilities (n_good, 10), P(not a digit) (n_good,) or None for a 10-output model), for
        the single-digit requests; each number request gets its candidates' logits (item.logits). One forward pass:
        the single digits first, then every number's candidates; then one through the pair reader, if any."""
        good = [item.tensor for item in items if item.prepared is not None]
        numbers = [item for item in items if item.number is not None]
        inputs = ([torch.stack(good)] if good else []) + [item.tensor for item in numbers]
        if sum(len(part) for part in inputs) == 0:
            return items, None, None
        batch = torch.cat(inputs)  # (n, 1, 28, 28)
        with torch.inference_mode():
            everything = self.forward(batch.to(self.device)).float().cpu()  # (n, 10 or 11)
        start = len(good)
        for item in numbers:
            item.logits, start = everything[start : start + len(item.tensor)], start + len(item.tensor)
        self._read_pairs(numbers)
        if not good:
            return items, None, None
        logits = everything[: len(good)]  # (n_good, 10 or 11)
        probabilities = torch.softmax(logits[:, :NOT_A_DIGIT_INDEX], dim=1)
        not_a_digit = None
        if logits.shape[1] > NOT_A_DIGIT_INDEX:
            not_a_digit = torch.softmax(logits, dim=1)[:, NOT_A_DIGIT_INDEX]
        self._explain([item for item in items if item.prepared is not None], probabilities)
        return items, probabilities, not_a_digit

    def _read_pairs(self, numbers: list[Item]) -> None:
        """The pair reader's logits for every number's wide candidates (item.pair_logits), in one forward pass."""
        asking = [item for item in numbers if item.wide]
        if self.pair_forward is None or not asking:
            return
        with torch.inference_mode():
            everything = self.pair_forward(torch.cat([item.pair_inputs for item in asking]).to(self.device))
        start = 0
        for item in asking:
            item.pair_logits = everything[start : start + len(item.wide)].float().cpu().numpy()
            start += len(item.wide)

    def _explain(self, good: list[Item], probabilities: torch.Tensor) -> None:
        """Attributions for the explain items among the good ones (row i of probabilities is good[i]), all in one
        batch; each item's target becomes the digit explained."""
        asked = [(item, row) for row, item in enumerate(good) if item.explain]
        if not asked:
            return
        for item, row in asked:
            if item.target == ALL:  # every digit's map, in one pass; the predicted digit's is "the" map
                item.all_attributions = integrated_gradients_all(self.model, item.tensor.to(self.device)).cpu()
                item.target = int(probabilities[row].argmax())
                item.attributions = item.all_attributions[item.target]
            elif item.target is None:
                item.target = int(probabilities[row].argmax())
        single = [item for item, _ in asked if item.attributions is None]
        if not single:
            return
        inputs = torch.stack([item.tensor for item in single]).to(self.device)  # (n, 1, 28, 28)
        targets = torch.tensor([item.target for item in single], device=self.device)
        attributions = integrated_gradients(self.model, inputs, targets=targets).cpu()
        for item, attribution in zip(single, attributions, strict=True):
            item.attributions = attribution

    def explain_handle(self, data_preprocess: list[Item], raw_data) -> list[dict]:
        """TorchServe calls this instead of inference + postprocess when the batch's first request is an
        /explanations one; both paths answer each request as it asked (see _item), so this is the same path."""
        return self.postprocess(self.inference(data_preprocess))

    def postprocess(self, output: Output) -> list[dict]:
        items, probabilities, not_a_digit = output
        answers, row = [], 0
        for index, item in enumerate(items):
            # Rows and requests are the same, except under KServe's envelope, where one request carries several
            # instances: then the status and type stay the request's, and an error is reported in its prediction.
            own_request = index < len(self.context.request_processor)
            if own_request:
                self.context.set_response_content_type(index, "application/json")
            if item.error is not None:
                message = safe_message(str(item.error))
                if own_request:
                    self.context.set_response_status(item.error.status, message, idx=index)
                answers.append({"error": message, "status": item.error.status})
                continue
            if item.number is not None:
                answers.append(self._number_answer(item))
                continue
            assert item.prepared is not None and probabilities is not None  # a good item, hence a row of its own
            answer = self._answer(item, probabilities[row], None if not_a_digit is None else float(not_a_digit[row]))
            row += 1
            if item.preview:
                answer["preview"] = base64.b64encode(item.prepared.png()).decode("ascii")
            if item.explain:
                answer.update(self._explanation(item))
            answers.append(answer)
        return answers

    def _answer(self, item: Item, p: torch.Tensor, not_a_digit: float | None) -> dict:
        """The prediction for one good item: p its ten digit probabilities, not_a_digit P(not a digit) or None."""
        model = self.manifest["model"]
        answer = {
            "digit": int(p.argmax()),
            "confidence": float(p.max()),
            "probabilities": [float(v) for v in p],
            "model_name": model.get("modelName"),
            "model_version": model.get("modelVersion"),
        }
        if not_a_digit is not None:
            answer["not_a_digit_probability"] = not_a_digit
        if self.refusal.enabled:
            assert item.prepared is not None
            prepared = item.prepared
            reason = self.refusal.reason(
                field=prepared.ink, not_a_digit=not_a_digit, extent=prepared.extent, photo=prepared.photo
            )
            answer["not_a_digit"] = reason is not None
            if reason is not None:
                answer.update(digit=None, reason=reason, closest_digit=int(p.argmax()))
        return answer

    def _number_answer(self, item: Item) -> dict:
        """The number read from one number request's candidates (handler/segmentation.py), with the version's refusal
        rules applied to each digit: a refused digit makes the whole number null."""
        model = self.manifest["model"]
        logits = item.logits if item.logits is not None else torch.zeros((0, NOT_A_DIGIT_INDEX))  # (none: refused)
        pairs = None if item.pair_logits is None else pair_log_probs(item.number, item.wide, item.pair_logits)
        answer = reading(item.number, logits[:, :NOT_A_DIGIT_INDEX].numpy(), pairs=pairs)
        if answer["number"] is None:
            answer["not_a_digit"] = True
        for digit in answer["digits"]:
            index, pair = digit.pop("candidate"), digit.pop("pair")
            candidate = item.number.candidates[index]
            if item.preview:  # what the model read: the digit's field, or the pair's
                seen = pair_field(candidate.crop) if pair else candidate.field
                digit["preview"] = base64.b64encode(to_png(seen)).decode("ascii")
            if self.refusal.enabled and pair:  # the pair reader chose two digits over any other reading
                digit["not_a_digit"] = False
            elif self.refusal.enabled:
                row = logits[index]
                not_a_digit = float(torch.softmax(row, 0)[NOT_A_DIGIT_INDEX]) if len(row) > NOT_A_DIGIT_INDEX else None
                reason = self.refusal.reason(field=candidate.field, not_a_digit=not_a_digit)
                digit["not_a_digit"] = reason is not None
                if reason is not None and answer["number"] is not None:
                    answer.update(number=None, not_a_digit=True, reason=reason)
        if self.refusal.enabled:
            answer.setdefault("not_a_digit", False)
        return answer | {"model_name": model.get("modelName"), "model_version": model.get("modelVersion")}

    @staticmethod
    def _explanation(item: Item) -> dict:
        assert item.prepared is not None and item.prepared.field_box is not None
        left, top, right, bottom = item.prepared.field_box
        answer: dict[str, object] = {
            "target": item.target,
            "attributions": as_rows(item.attributions),
            "method": f"integrated_gradients(baseline=blank, steps={STEPS})",
            "field_box": {"left": left, "top": top, "right": right, "bottom": bottom},
        }
        if item.all_attributions is not None:  # "target": "all": one map per digit, index = digit
            answer["attributions_by_target"] = [as_rows(a) for a in item.all_attributions]
        return answer
