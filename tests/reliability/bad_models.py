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


def card_text(change: Callable[[str], str]) -> Callable[[Path], None]:
    """The card's JSON text changed as text (what json.dumps cannot write: 1e999, deep nesting,
    bytes that are not UTF-8)."""
    def apply(model: Path) -> None:
        text = json.dumps(json.loads((model / CARD).read_text()))
        (model / CARD).write_bytes(change(text).encode("utf-8", "surrogateescape"))
    return apply


def extra_key(raw_json: str) -> Callable[[str], str]:
    """Adds ``"extra": <raw_json>`` to the card's text (extra keys are allowed)."""
    return lambda text: text[:-1] + f', "extra": {raw_json}}}'


def shaped_at_run_time(proto, output: str, hidden: int) -> None:
    """``output`` (a state, [L, B, hidden]) reshaped through a shape computed from the
    ``emotion`` input's values (which sum to 1), so that no shape inference can know its last
    size: declared ``H``, it is told only by a run."""
    from onnx import TensorProto, helper

    producer = next(n for n in proto.graph.node if output in n.output)
    producer.output[:] = [f"{output}_raw" if o == output else o for o in producer.output]
    layers = next(o for o in proto.graph.output if o.name == output).type.tensor_type.shape.dim[0].dim_value
    proto.graph.node.extend([
        helper.make_node("ReduceSum", ["emotion"], [f"{output}_one"], keepdims=0),
        helper.make_node("Mul", [f"{output}_one", f"{output}_h"], [f"{output}_hf"]),
        helper.make_node("Round", [f"{output}_hf"], [f"{output}_hr"]),
        helper.make_node("Cast", [f"{output}_hr"], [f"{output}_hi"], to=TensorProto.INT64),
        helper.make_node("Reshape", [f"{output}_hi", f"{output}_one_dim"], [f"{output}_h1"]),
        helper.make_node("Concat", [f"{output}_lead", f"{output}_h1"], [f"{output}_shape"], axis=0),
        helper.make_node("Reshape", [f"{output}_raw", f"{output}_shape"], [output]),
    ])
    proto.graph.initializer.extend([
        helper.make_tensor(f"{output}_h", TensorProto.FLOAT, [], [float(hidden)]),
        helper.make_tensor(f"{output}_one_dim", TensorProto.INT64, [1], [1]),
        helper.make_tensor(f"{output}_lead", TensorProto.INT64, [2], [layers, -1]),
    ])
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name.startswith("state"):
            value.type.tensor_type.shape.dim[2].dim_param = "H"


def symbolic_hidden(card_hidden: int, file_hidden: int = 32) -> Callable[[Path], None]:
    """The state's hidden size in the ONNX files made symbolic (``H``, known only by a run)
    and the card's set to ``card_hidden``: the files load, then a run gives another size."""
    def apply(model: Path) -> None:
        import onnx

        for name, output in (("decoder_init.onnx", "state"), (STEP, "state_out")):
            proto = onnx.load(str(model / name))
            shaped_at_run_time(proto, output, file_hidden)
            onnx.save(proto, str(model / name))

        def card_change(card: dict) -> None:
            card["sizes"]["hidden"] = card_hidden
            for role in ("decoder_init", "decoder_step"):
                for side in ("inputs", "outputs"):
                    for tensor, shape in card["io"][role][side].items():
                        if tensor.startswith("state"):
                            shape[2] = card_hidden
        edit_card(card_change)(model)
    return apply


def fixed_batch(name: str, tensor: str) -> Callable:
    def change(proto) -> None:
        for value in proto.graph.input:
            if value.name == tensor:
                value.type.tensor_type.shape.dim[0].dim_value = 1
    return edit_onnx(name, change)


def linked_out_of_the_folder(name: str) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        outside = model.parent / f"elsewhere-{name}"
        shutil.move(str(model / name), outside)
        (model / name).symlink_to(outside)
    return apply


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
        BadModel("card sampling not an object", edit_card(lambda c: c.update(sampling="hot")),
                 ("'sampling' must be an object", "hot")),
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
        # From a downloaded card or folder (helper-40, 2026-12-06): each crashed, aborted or
        # raised something other than ModelError.
        BadModel("card of 5 MB", card_text(extra_key('"' + "x" * (5 << 20) + '"')),
                 ("more than a model card holds",)),
        BadModel("card nested 100,000 deep", card_text(extra_key("[" * 100000 + "]" * 100000)),
                 ("nested deeper than 64",)),
        BadModel("card number out of range", card_text(extra_key("1e999")), ("not valid json",)),
        BadModel("card bytes not UTF-8", card_text(lambda t: t.replace('"format"', '"\udcff\udcfe", "format"', 1)),
                 ("not valid json",)),
        BadModel("card sizes.z 2**31 - 1", edit_card(lambda c: c["sizes"].update(z=2**31 - 1)),
                 ("sizes.z", "1..16384")),
        BadModel("state larger than the card says, its size symbolic", symbolic_hidden(16),
                 ("state", "the run gave")),
        BadModel("state smaller than the card says, its size symbolic", symbolic_hidden(64),
                 ("state", "the run gave")),
        BadModel("batch size fixed in the file", fixed_batch("decoder_init.onnx", "z"),
                 ("'z'", "[-1, 16]", "[1, 16]")),
        BadModel("decoder_step a link out of the folder", linked_out_of_the_folder(STEP),
                 ("outside the model folder",)),
        BadModel("model_card.json a link out of the folder", linked_out_of_the_folder("model_card.json"),
                 ("model_card.json", "outside the model folder")),
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
