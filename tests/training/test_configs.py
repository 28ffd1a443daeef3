"""training/configs: valid recipes, chained pre-train -> continue -> fine-tune -> settle."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from emolive.training.config import TrainConfig, add_config_flags, config_from_values, given_values

pytestmark = pytest.mark.training

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
RECIPES = sorted(p for p in CONFIGS.glob("*.json") if not p.name.endswith("_card.json"))


def load(path: Path) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    return config_from_values(given_values(parser.parse_args(["--config", str(path)])))  # as train.py


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_is_a_valid_config(path: Path) -> None:
    cfg = load(path)
    assert cfg.max_steps > 0 and cfg.out


def test_the_recipes_chain_pre_train_continue_fine_tune_settle_silence_at_the_same_sizes() -> None:
    pre = load(CONFIGS / "pop909_pretrain.json")
    cont = load(CONFIGS / "pop909_continue.json")
    tune = load(CONFIGS / "emopia_finetune.json")
    settle = load(CONFIGS / "emopia_settle.json")
    silent = load(CONFIGS / "emopia_silent.json")
    for unlabelled in (pre, cont):
        assert unlabelled.datasets == [] and unlabelled.unlabelled == ["pop909"]
    for labelled in (tune, settle, silent):
        assert labelled.datasets == ["emopia"] and not labelled.unlabelled
    for before, after in ((pre, cont), (cont, tune), (tune, settle), (settle, silent)):
        assert Path(after.init_from) == Path(before.out) / "ckpt.pt"
    assert (pre.model_config() == cont.model_config() == tune.model_config()
            == settle.model_config() == silent.model_config())
    # The EMOPIA stages are the scratch recipe but for their length, schedule, start and output;
    # the fine-tune shifts by whole octaves, the settling stage does not, and the last stage
    # settles with segments that start from silence.
    scratch = load(CONFIGS / "emopia.json").to_dict()
    schedule = {"max_steps", "beta_warmup_steps", "out", "init_from"}
    assert {k for k, v in tune.to_dict().items() if scratch[k] != v} <= schedule | {"octaves"}
    assert tune.octaves == 1 and settle.octaves == 0 == silent.octaves
    differ = {k for k, v in settle.to_dict().items() if scratch[k] != v}
    assert differ <= schedule | {"lr", "warmup_steps", "eval_every"}
    differ = {k for k, v in silent.to_dict().items() if settle.to_dict()[k] != v}
    assert differ == {"max_steps", "out", "init_from", "eval_every", "silent_start"}
    assert settle.silent_start == 0.0 and silent.silent_start == 1.0


def test_the_shipped_model_has_the_recipes_sizes() -> None:
    """The recipes reproduce the bundled model's architecture (plan, final states, sizes)."""
    import json

    from emolive.engine import DEFAULT_MODEL_DIR
    from emolive.training.model import ModelConfig

    card = json.loads((Path(DEFAULT_MODEL_DIR) / "model_card.json").read_text())
    assert ModelConfig(**card["model"]) == load(CONFIGS / "emopia_silent.json").model_config()
    assert card["training"]["config"]["silent_start"] == 1.0


def test_extends_supplies_the_rest_and_refuses_a_loop(tmp_path: Path) -> None:
    (tmp_path / "base.json").write_text('{"max_steps": 7, "batch_size": 5}')
    (tmp_path / "child.json").write_text('{"extends": "base.json", "max_steps": 9}')
    cfg = load(tmp_path / "child.json")
    assert (cfg.max_steps, cfg.batch_size) == (9, 5)
    (tmp_path / "loop.json").write_text('{"extends": "loop.json"}')
    with pytest.raises(ValueError, match="extends itself"):
        load(tmp_path / "loop.json")
    (tmp_path / "orphan.json").write_text('{"extends": "missing.json"}')
    with pytest.raises(ValueError, match="not found"):
        load(tmp_path / "orphan.json")
