"""The training configuration: one dataclass, read from a JSON file and/or command-line flags."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .data import DEFAULT_DATA, LABELLED_DATASETS
from .model import ModelConfig


MAX_THREADS = 256  # torch threads; far more than cores only slows a run down (or aborts it)
MAX_SEED = 2**32 - 1


@dataclass
class TrainConfig:
    # data
    data: str = str(DEFAULT_DATA)  # folder holding emopia/, vgmidi/ (the ../shared/data layout)
    datasets: list[str] = field(default_factory=lambda: ["emopia"])  # emopia, vgmidi
    generic_folder: str = ""  # a folder of labelled MIDI (with generic_csv)
    generic_csv: str = ""  # CSV: path + emotion name, or path + valence + arousal
    # Unlabelled MIDI folders (under `data`, or absolute): POP909 ("pop909"), VGMIDI's unlabelled
    # pieces ("vgmidi/unlabelled"). Their segments train with the even blend of the four
    # quadrants and no emotion term; use them to pre-train, then fine-tune with `init_from`.
    unlabelled: list[str] = field(default_factory=list)
    cache_dir: str = "cache"
    out: str = "runs/default"
    segment_bars: int = 2
    hop_bars: int = 1
    min_onsets: int = 4  # segments with fewer onsets are skipped
    transpose: int = 5  # random shift in [-transpose, transpose + 1) semitones per segment
    # Transpose every clip so that its estimated tonic is C (Krumhansl-Schmuckler, whole clip;
    # its mode is kept): the model then learns mode as pitch content it can tie to the emotion,
    # and the engine transposes to the key asked for. Needs transpose = 0.
    key_normalise: bool = False
    octaves: int = 0  # random shift by -octaves..octaves octaves per segment (keeps the key)
    # model (see ModelConfig)
    z_dim: int = 64
    hidden: int = 384
    layers: int = 1
    enc_hidden: int = 192
    emb_dim: int = 16
    frame_proj: int = 192
    attention: bool = True
    final_states: bool = True  # encoder summary also from the GRU's final states (it paid)
    plan_steps: int = 0  # per-step projections of z for the decoder (ModelConfig); 0 = off
    plan_dim: int = 64
    plan_head_only: bool = False
    # optimisation
    seed: int = 0
    batch_size: int = 64
    lr: float = 2e-3
    min_lr_frac: float = 0.1  # cosine decay to lr * min_lr_frac at max_steps
    warmup_steps: int = 200
    grad_clip: float = 1.0
    max_steps: int = 6000
    max_minutes: float = 55.0  # stop (and save) after this much wall-clock time
    eval_every: int = 250
    val_segments: int = 1024
    threads: int = 2
    # losses
    beta_max: float = 0.2
    beta_warmup_steps: int = 2000  # KL weight 0 at step 0, beta_max from this step (1: from step 1)
    free_bits: float = 0.1  # nats per latent dimension
    adv_weight: float = 0.3  # gradient-reversal emotion adversary on the posterior mean
    critic_weight: float = 0.0  # emotion critic on output statistics; off: it did not pay
    input_dropout: float = 0.0  # P(a decoder step sees zeros for the previous frame), training only
    hidden_dropout: float = 0.0  # dropout on the GRU's outputs before the head, training only
    # P(a decoder step sees the decoder's own previous frame, from a teacher-forced pass, in
    # place of the true one), training only: scheduled sampling, for free-running decoding
    own_frames: float = 0.0
    # P(a segment's decoder steps all see the frames the decoder plays running free from z),
    # training only: the decoder learns from the inputs it will meet when it runs free
    free_run: float = 0.0
    # P(a segment's decoder inputs and targets lose the notes begun before it), training only:
    # the decoder learns to start from silence, as it does running free (model.start_from_silence)
    silent_start: float = 0.0
    # P(a note begun in a segment is taken out of the decoder's inputs and later hold targets,
    # its onset target kept), training only: the decoder learns to go on after missing a note,
    # as it does running free (model.drop_notes)
    missed_notes: float = 0.0
    resume: bool = False
    init_from: str = ""  # checkpoint whose weights start this run (new optimizer and schedule)

    @property
    def segment_steps(self) -> int:
        return self.segment_bars * 16

    def model_config(self) -> ModelConfig:
        # every ModelConfig field has a TrainConfig field of the same name
        return ModelConfig(**{f.name: getattr(self, f.name) for f in fields(ModelConfig)})

    def to_dict(self) -> dict:
        return asdict(self)


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per TrainConfig field (``--batch-size 32``, ``--datasets emopia vgmidi``)."""
    parser.add_argument("--config", help="JSON file of TrainConfig fields (flags override it), or the name of a "
                        f"recipe the package holds: {', '.join(bundled_recipes())}")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = TrainConfig().__getattribute__(f.name)
        shown = f"default: {json.dumps(default)}; docs/training.md"
        if isinstance(default, bool):
            parser.add_argument(flag, type=parse_bool, default=None, metavar="BOOL", help=shown)
        elif isinstance(default, list):
            names = {"datasets": "emopia, vgmidi", "unlabelled": "folders, e.g. pop909"}[f.name]
            parser.add_argument(flag, nargs="*", default=None, help=f"{names} ({shown})")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=shown)


def given_values(args: argparse.Namespace) -> dict:
    """The settings a command gives: its JSON file's <- its flags (not the defaults). Unknown
    keys or values of the wrong type in the file are a ValueError."""
    values = _read_config_file(config_path(args.config)) if args.config else {}
    for f in fields(TrainConfig):
        flag_value = getattr(args, f.name, None)
        if flag_value is not None:
            values[f.name] = flag_value
    return values


def config_from_values(values: dict) -> TrainConfig:
    """Defaults <- ``values``, checked (ValueError naming the setting)."""
    cfg = TrainConfig(**values)
    _validate(cfg)
    return cfg


def dangling_link(flag: str, path: Path) -> str:
    """Why ``path`` cannot be made when it, or a folder above it, is a link to nothing (mkdir
    there says "File exists", after all the work); "" when none is."""
    for part in [path, *path.parents]:
        if part.is_symlink() and not part.exists():
            where = f"{flag} {path} is" if part == path else f"{flag} {path} cannot be made: {part} is"
            return f"{where} a link to {os.readlink(part)}, which does not exist: make that folder, or give another"
    return ""


def check_out_folder(path: Path, flag: str) -> None:
    """ValueError unless ``path`` is a folder or one can be made there: not a file, not under a
    file, not the empty name (which would mean the current folder without saying so)."""
    if not str(path) or str(path) == ".":
        raise ValueError(f"{flag} is empty; name the folder to write into")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file; give a folder")
    if why := dangling_link(flag, path):
        raise ValueError(why)
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if above.exists() and not above.is_dir():
        raise ValueError(f"{flag} {path} cannot be made: {above} is a file")
    _check_writable(path if path.is_dir() else above, flag)


def _check_writable(folder: Path, flag: str) -> None:
    """ValueError unless something can be written in ``folder`` (tried: permissions do not
    tell for root or an immutable folder). Before any work: it failed after the data loaded."""
    try:
        probe = tempfile.mkdtemp(prefix=".emolive-write-check-", dir=folder)
    except OSError as err:
        raise ValueError(f"{flag}: cannot write into {folder}: {err.strerror or err}") from None
    os.rmdir(probe)


#: The recipes of the shipped model (docs/evaluation/discussion.md, "Reproduce"), installed with
#: the package as emolive/training/configs/.
BUNDLED_CONFIGS = Path(__file__).resolve().parent / "configs"


def bundled_recipes() -> list[str]:
    """The recipes' names; not ``*_card.json``, the card entries an export adds (--card-extra),
    which are no training settings (helper-66: `--config emopia_card` dumped its JSON)."""
    return sorted(path.stem for path in BUNDLED_CONFIGS.glob("*.json") if not path.stem.endswith("_card"))


def config_path(given: str) -> Path:
    """``--config``'s file: the path given, else, for a bare name that is no file here
    (``emopia``, ``emopia.json``), the package's recipe of that name. The README's
    ``training/configs/emopia.json`` exists only in a checkout (helper-64); the name works
    wherever the package is installed. A missing file is said with the recipes there are."""
    path = Path(given).expanduser()
    if path.exists() or path.parent != Path("."):
        if not path.exists():
            raise ValueError(f"config file {path} not found; the package's recipes, by name: "
                             f"{', '.join(bundled_recipes())}")
        return path
    bundled = BUNDLED_CONFIGS / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if bundled.stem not in bundled_recipes():
        raise ValueError(f"config file {path} not found, and the package holds no recipe of that name: "
                         f"{', '.join(bundled_recipes())}")
    return bundled


def _read_config_file(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A JSON file of TrainConfig fields; ``"extends": "other.json"`` (beside it) supplies the
    rest, so a recipe lists only what differs from the one it extends."""
    if path.is_dir():
        raise ValueError(f"config file {path} is a folder; give a .json file")
    if not path.is_file():
        raise ValueError(f"config file {path} not found")
    if path.resolve() in seen:
        raise ValueError(f"config file {path} extends itself")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} is not valid JSON: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a JSON object of settings, "
                         f"not {type(values).__name__}")
    base = values.pop("extends", None)
    if base is not None and not isinstance(base, str):
        raise ValueError(f"{path}: \"extends\" names another config file, not {base!r}")
    unknown = sorted(set(values) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown config keys in {path}: {', '.join(unknown)}")
    for name, value in values.items():
        values[name] = _typed(name, value, path)
    if base is None:
        return values
    return {**_read_config_file(path.parent / base, seen + (path.resolve(),)), **values}


def _typed(name: str, value: object, path: Path) -> object:
    """``value`` of a config file as field ``name``'s type (an int is a float too, and a float
    with no fraction an int); ValueError naming the file, key and the type wanted."""
    want = type(getattr(TrainConfig(), name))
    if want is list and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if want is bool and isinstance(value, bool) or want is str and isinstance(value, str):
        return value
    if want in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if want is float:
            return float(value)
        if float(value).is_integer():
            return int(value)
    kind = {list: "a list of names", bool: "true or false", str: "a string",
            int: "a whole number", float: "a number"}[want]
    raise ValueError(f"{path}: {name} must be {kind}, got {json.dumps(value)}")


def check_generic_pair(folder: str, csv_path: str) -> None:
    """ValueError unless a generic labelled folder and its CSV are given together (train's
    config, and evaluate's and calibrate's flags before any work)."""
    if bool(csv_path) != bool(folder):
        raise ValueError("--generic-csv and --generic-folder go together: the CSV's paths are "
                         "relative to the folder")


def add_labelled_data_flags(parser: argparse.ArgumentParser) -> None:
    """The labelled data that evaluate and calibrate read an exported model against: --data,
    --datasets, --generic-folder with --generic-csv, --min-onsets, --cache-dir."""
    from emolive.cli_options import integer_in

    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--datasets", nargs="*", default=["emopia"])
    parser.add_argument("--generic-folder", default="", help="labelled MIDI folder (with CSV)")
    parser.add_argument("--generic-csv", default="", help="CSV: path + emotion or valence/arousal")
    parser.add_argument("--min-onsets", type=integer_in(0, None, "--min-onsets"), default=4,
                        help="skip sparser segments")
    parser.add_argument("--cache-dir", default="cache")


def labelled_data_config(args: argparse.Namespace, card: dict) -> TrainConfig:
    """The config that loads add_labelled_data_flags' data as the model of ``card`` reads it:
    its segment length and key normalisation, no transposition."""
    return TrainConfig(data=args.data, datasets=args.datasets, cache_dir=args.cache_dir,
                       generic_folder=args.generic_folder, generic_csv=args.generic_csv,
                       min_onsets=args.min_onsets, segment_bars=card["sizes"]["segment_steps"] // 16,
                       transpose=0, key_normalise=card.get("tonic") is not None)


UPPER_BOUNDS = {"lr": 1e30, "batch_size": 4096, "segment_bars": 64, "hop_bars": 64}


def _validate(cfg: TrainConfig) -> None:
    positive = ("segment_bars", "hop_bars", "z_dim", "hidden", "layers", "enc_hidden", "emb_dim",
                "frame_proj", "plan_dim", "batch_size", "max_steps", "eval_every", "val_segments")
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(cfg, name)}")
    for name in ("lr", "grad_clip", "max_minutes"):
        if not 0.0 < getattr(cfg, name) < float("inf"):
            raise ValueError(f"{name} must be positive, got {getattr(cfg, name)}")
    # Upper bounds where a value beyond any use failed late with a traceback (the optimiser
    # cannot hold lr 1e300; a million segments a batch asked for 31 GiB) or ran for ever.
    for name, largest in UPPER_BOUNDS.items():
        if getattr(cfg, name) > largest:
            raise ValueError(f"{name} must be at most {largest}, got {getattr(cfg, name)}")
    for name in ("warmup_steps", "beta_warmup_steps", "min_onsets", "seed", "beta_max",
                 "free_bits", "adv_weight", "critic_weight"):
        if not 0 <= getattr(cfg, name) < float("inf"):
            raise ValueError(f"{name} must be 0 or more, got {getattr(cfg, name)}")
    if not 1 <= cfg.threads <= MAX_THREADS:
        raise ValueError(f"threads must be from 1 to {MAX_THREADS}, got {cfg.threads}")
    if cfg.seed > MAX_SEED:  # torch.manual_seed takes no more
        raise ValueError(f"seed must be from 0 to {MAX_SEED}, got {cfg.seed}")
    if not 0.0 <= cfg.min_lr_frac <= 1.0:
        raise ValueError(f"min_lr_frac must be in [0, 1], got {cfg.min_lr_frac}")
    for name in ("input_dropout", "hidden_dropout"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {getattr(cfg, name)}")
    for name in ("own_frames", "free_run", "silent_start", "missed_notes"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {getattr(cfg, name)}")
    if not 0 <= cfg.transpose <= 11:
        raise ValueError(f"transpose must be in 0..11 semitones, got {cfg.transpose}")
    if not 0 <= cfg.octaves <= 2:
        raise ValueError(f"octaves must be in 0..2, got {cfg.octaves}")
    if cfg.plan_steps < 0 or (cfg.plan_steps and cfg.segment_steps % cfg.plan_steps):
        raise ValueError(f"plan_steps must be 0 (off) or divide the {cfg.segment_steps} steps of a "
                         f"segment, which the engine re-seeds at; got {cfg.plan_steps}")
    if cfg.key_normalise and cfg.transpose:
        raise ValueError("key_normalise puts every clip in C, which random transposition would "
                         f"undo: set transpose to 0 (got {cfg.transpose})")
    unknown = sorted(set(cfg.datasets) - set(LABELLED_DATASETS))
    if unknown:
        raise ValueError(f"unknown datasets {unknown}; known: {', '.join(LABELLED_DATASETS)} (or "
                         "--generic-folder with --generic-csv)")
    check_generic_pair(cfg.generic_folder, cfg.generic_csv)
