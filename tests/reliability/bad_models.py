"""A corpus of broken model directories, each made from a copy of a valid one.

Each entry: a name, a function that breaks the copy in place, and words the error message must
contain (the file or tensor at fault), so that "a clear exception" is checked, not assumed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CARD = "model_card.json"
STEP = "decoder_step.onnx"


@dataclass
class BadModel:
    name: str
    breaks: Callable[[Path], None]
    mentions: tuple[str, ...]  # each must appear in the error message (case-insensitive)


def edit_card(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        card = json.loads((model / CARD).read_text())
        change(card)
        (model / CARD).write_text(json.dumps(card))
    return apply


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda model: (model / name).write_bytes(data)


def truncate(name: str) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        data = (model / name).read_bytes()
        (model / name).write_bytes(data[: len(data) // 2])
    return apply


def edit_onnx(name: str, change: Callable) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        import onnx

        proto = onnx.load(str(model / name))
        change(proto)
        onnx.save(proto, str(model / name))
    return apply


def rename_input(old: str, new: str) -> Callable:
    def change(proto) -> None:
        for value in proto.graph.input:
            if value.name == old:
                value.name = new
        for node in proto.graph.node:
            node.input[:] = [new if i == old else i for i in node.input]
    return change


def set_input_dtype_double(name: str) -> Callable:
    def change(proto) -> None:
        import onnx

        for value in proto.graph.input:
            if value.name == name:
                value.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
        cast = onnx.helper.make_node("Cast", [name], [name + "_f32"],
                                     to=onnx.TensorProto.FLOAT)
        for node in proto.graph.node:
            node.input[:] = [name + "_f32" if i == name else i for i in node.input]
        proto.graph.node.insert(0, cast)
    return change


def nan_weights(proto) -> None:
    """Every float initializer of the graph becomes NaN (as a diverged training run leaves it)."""
    from onnx import numpy_helper

    for index, init in enumerate(proto.graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32:
            bad = numpy_helper.from_array(np.full_like(array, np.nan), init.name)
            proto.graph.initializer[index].CopyFrom(bad)


def swap_file_from(other: Path, name: str) -> Callable[[Path], None]:
    return lambda model: shutil.copy(other / name, model / name)


def remove(name: str) -> Callable[[Path], None]:
    return lambda model: (model / name).unlink()


BATCH = "decoder_step_batch"  # the optional batch step (docs/model-contract.md)


def with_batch_step(source: Path | None = None,
                    then: Callable[[Path], None] = lambda model: None) -> Callable[[Path], None]:
    """Give the model a batch step (a copy of ``source``'s decoder_step, default its own, which
    has the batch step's inputs and outputs) named in its card, then apply ``then``."""
    def apply(model: Path) -> None:
        shutil.copy((source or model) / STEP, model / f"{BATCH}.onnx")
        edit_card(lambda c: (c["files"].update({BATCH: f"{BATCH}.onnx"}),
                             c["io"].update({BATCH: c["io"]["decoder_step"]})))(model)
        then(model)
    return apply


def corpus(other_size_model: Path) -> list[BadModel]:
    """``other_size_model``: a valid model of other sizes (z 8, hidden 24) to borrow files from."""
    return [
        BadModel("empty directory", lambda m: [p.unlink() for p in m.iterdir()], ("model_card",)),
        BadModel("card missing", remove(CARD), ("model_card",)),
        BadModel("card empty", write_bytes(CARD, b""), ("model card",)),
        BadModel("card not JSON", write_bytes(CARD, b"{not json"), ("json",)),
        BadModel("card a JSON list", write_bytes(CARD, b"[1, 2]"), ("object",)),
        BadModel("card lacks 'sizes'", edit_card(lambda c: c.pop("sizes")), ("sizes",)),
        BadModel("card wrong format", edit_card(lambda c: c.update(format="other")), ("format",)),
        BadModel("card format_version 99", edit_card(lambda c: c.update(format_version=99)),
                 ("format_version",)),
        BadModel("card z differs from the files", edit_card(
            lambda c: c["sizes"].update(z=17)), ("mu", "17", "16")),
        BadModel("card hidden differs from the files", edit_card(
            lambda c: c["sizes"].update(hidden=64)), ("state", "64", "32")),
        BadModel("card names a missing file", edit_card(
            lambda c: c["files"].update(decoder_step="nowhere.onnx")), ("nowhere.onnx",)),
        BadModel("card io renames an input", edit_card(
            lambda c: c["io"]["decoder_step"]["inputs"].update(
                previous=c["io"]["decoder_step"]["inputs"].pop("prev"))), ("prev",)),
        BadModel("card emotions not 4", edit_card(
            lambda c: c["emotions"].update(order=["Q1", "Q2", "Q3"])), ("emotions",)),
        BadModel("decoder_step missing", remove(STEP), (STEP,)),
        BadModel("decoder_step empty", write_bytes(STEP, b""), (STEP,)),
        BadModel("decoder_step truncated", truncate(STEP), (STEP,)),
        BadModel("decoder_step random bytes", write_bytes(
            STEP, np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
            (STEP,)),
        BadModel("decoder_step is a directory",
                 lambda m: ((m / STEP).unlink(), (m / STEP).mkdir()), (STEP,)),
        BadModel("encoder.onnx truncated", truncate("encoder.onnx"), ("encoder",)),
        BadModel("decoder_init from a model of other sizes",
                 swap_file_from(other_size_model, "decoder_init.onnx"), ("decoder_init",)),
        BadModel("decoder_step from a model of other sizes",
                 swap_file_from(other_size_model, STEP), (STEP,)),
        BadModel("onnx input renamed", edit_onnx(STEP, rename_input("prev", "frame")),
                 ("prev",)),
        BadModel("onnx input float64", edit_onnx(STEP, set_input_dtype_double("prev")),
                 ("prev", "float")),
        BadModel("card and files disagree on layers", edit_card(
            lambda c: (c["sizes"].update(layers=2),
                       c["io"]["decoder_step"]["inputs"]["state"].__setitem__(0, 2))),
                 ("state",)),
        BadModel("card state rank 2", edit_card(
            lambda c: c["io"]["decoder_step"]["inputs"].update(state=[-1, 32])), ("state",)),
        BadModel("NaN weights", edit_onnx(STEP, nan_weights), ("nan",)),
        BadModel("batch step missing", with_batch_step(then=remove(f"{BATCH}.onnx")),
                 (BATCH,)),
        BadModel("batch step without io in the card", with_batch_step(
            then=edit_card(lambda c: c["io"].pop(BATCH))), (f"io.{BATCH}",)),
        BadModel("batch step from a model of other sizes", with_batch_step(other_size_model),
                 (BATCH,)),
        BadModel("batch step with NaN weights", with_batch_step(
            then=edit_onnx(f"{BATCH}.onnx", nan_weights)), (BATCH, "nan")),
    ]


def fail_once_notes_play(proto) -> None:
    """A step that loads and runs on silence but fails once a note has played: ``onset_logits``
    goes through a Reshape to ``[-1, 88 + any(prev >= 1)]``, which ONNX Runtime refuses at run
    time (88 values do not fill rows of 89). For the generator's error path."""
    import onnx
    from onnx import helper

    out = next(o for o in proto.graph.output if o.name == "onset_logits")
    producer = next(n for n in proto.graph.node if "onset_logits" in n.output)
    producer.output[:] = ["onset_raw" if o == "onset_logits" else o for o in producer.output]
    const = lambda name, values: helper.make_node(  # noqa: E731
        "Constant", [], [name], value=helper.make_tensor(name, onnx.TensorProto.INT64,
                                                         [len(values)], values))
    proto.graph.node.extend([
        const("axis0", [0]), const("minus_one", [-1]), const("keys", [88]),
        helper.make_node("ReduceMax", ["prev"], ["prev_max"], keepdims=0),
        helper.make_node("Cast", ["prev_max"], ["played"], to=onnx.TensorProto.INT64),
        helper.make_node("Unsqueeze", ["played", "axis0"], ["played_1"]),
        helper.make_node("Add", ["keys", "played_1"], ["width"]),
        helper.make_node("Concat", ["minus_one", "width"], ["shape"], axis=0),
        helper.make_node("Reshape", ["onset_raw", "shape"], [out.name]),
    ])
    onnx.checker.check_model(proto)
