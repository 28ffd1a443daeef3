"""The conditional VAE (CVAE) over piano-roll segments.

Shapes (B batch, T steps of a 16th note, F = 264 features per step, Z latent size,
L decoder layers, H decoder hidden size, E emotion-embedding size):

- emotion input: ``[B, 4]`` quadrant weights (Q1..Q4, non-negative, sum 1); the embedding is
  ``emotion @ table`` so a blend is the weighted sum of the quadrant embeddings.
- encoder: ``roll [B, T, F]`` + emotion -> ``mu, logvar [B, Z]``.
- decoder: ``init(z, emotion) -> state [L, B, S]``; ``step(prev [B, F], z, emotion, state)``
  -> onset logits, hold logits, velocity in 0..1 (each ``[B, 88]``) and the next state.
  ``S = ModelConfig.state_width``: the GRU's H, plus one slot holding the step within the
  plan (0, 1, ..., plan_steps - 1, then 0 again, counted from ``init``; a float) when the
  decoder has a per-step plan; kept modulo plan_steps, it stays exact however long a phrase runs.
  ``forward_teacher`` runs the same weights over a whole segment at once (training).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

N_KEYS = 88  # MIDI 21..108
FRAME_SIZE = 3 * N_KEYS  # [onset | hold | velocity]
N_EMOTIONS = 4  # Q1..Q4
OWN_ONSET_THRESHOLD = 0.3  # onsets of played_frame (training only): the shipped model's threshold


@dataclass
class ModelConfig:
    z_dim: int = 128
    hidden: int = 512  # decoder GRU hidden size (H)
    layers: int = 1  # decoder GRU layers (L)
    enc_hidden: int = 256  # per direction of the bidirectional encoder GRU
    emb_dim: int = 16  # emotion embedding size (E)
    frame_proj: int = 256  # per-step input projection of the encoder
    attention: bool = True  # attention pooling over encoder steps (else mean pooling only)
    # Also summarise by the forward GRU's last state and the backward GRU's first state (as
    # MusicVAE does): each has read the whole segment in order, so the summary keeps where in
    # the segment things happen, which a pooled mean blurs. T stays dynamic.
    final_states: bool = False
    # A per-step plan: z and the emotion are projected to one plan_dim vector for each of
    # plan_steps steps of the phrase, and step t of the decoder gets vector t % plan_steps as
    # input (GRU and output head; plan_head_only: the head alone). A step's own projection of z
    # lets z say what happens *at* that step, which z entering every step alike cannot.
    # 0 = off. The step index is kept in the state's last slot, so the ONNX contract holds.
    plan_steps: int = 0
    plan_dim: int = 64
    plan_head_only: bool = False

    def problems(self) -> list[str]:
        """What makes these sizes no model: each setting of the wrong type, or a size below 1
        (``plan_steps`` below 0). Empty when they make one."""
        found = []
        for f in fields(self):
            value, default = getattr(self, f.name), getattr(ModelConfig, f.name)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    found.append(f"{f.name} must be true or false, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool):
                found.append(f"{f.name} must be a whole number, got {value!r}")
            elif value < (0 if f.name == "plan_steps" else 1):
                found.append(f"{f.name} must be at least {0 if f.name == 'plan_steps' else 1}, "
                             f"got {value}")
        return found

    @property
    def state_width(self) -> int:
        """The last size of the decoder state: the GRU's hidden, + 1 for the plan's step."""
        return self.hidden + (1 if self.plan_steps else 0)

    def to_dict(self) -> dict:
        return asdict(self)


def shifted(frames: torch.Tensor) -> torch.Tensor:
    """``frames [B, T, F]`` one step later: entry t is frame t-1, entry 0 zeros (what decoder
    step t sees as its previous frame)."""
    return torch.cat([torch.zeros_like(frames[:, :1]), frames[:, :-1]], dim=1)


def held_from_before(roll: torch.Tensor) -> torch.Tensor:
    """``[B, T, 88]`` bool: where ``roll [B, T, F]`` holds a note that began before the segment
    (sounding at step 0 without an onset there, up to its end or the key's next onset)."""
    onset, hold = roll[..., :N_KEYS] > 0.5, roll[..., N_KEYS:2 * N_KEYS] > 0.5
    return torch.cumprod((hold & ~onset).to(torch.uint8), dim=1).bool()


def start_from_silence(roll: torch.Tensor, p: float) -> torch.Tensor:
    """``roll`` with, in each segment with probability ``p``, the notes that began before it
    taken out (their hold frames zeroed): the segment starts from silence, as the decoder does
    running free from z, which can only hold keys it started itself. Onsets and velocities are
    unchanged."""
    if p <= 0.0:
        return roll
    chosen = (torch.rand(roll.shape[0], 1, 1, device=roll.device) < p) & held_from_before(roll)
    hold = roll[..., N_KEYS:2 * N_KEYS].masked_fill(chosen, 0.0)
    return torch.cat([roll[..., :N_KEYS], hold, roll[..., 2 * N_KEYS:]], dim=-1)


def drop_notes(roll: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` for the decoder from ``roll [B, T, F]``: each note begun in the
    segment is, with probability ``p``, missed as the free-running decoder misses notes: taken
    out of the inputs (onset, hold and velocity frames zeroed) and out of the hold targets after
    its onset step. Its onset target stays: the decoder is still taught to play it, and to go on
    without it when it did not. Notes begun before the segment are :func:`start_from_silence`'s."""
    if p <= 0.0:
        return roll, roll
    onset, hold = roll[..., :N_KEYS] > 0.5, roll[..., N_KEYS:2 * N_KEYS] > 0.5
    note = torch.cumsum(onset.long(), dim=1)  # [B, T, 88]: the key's note number, 0 = from before
    drop = torch.rand(roll.shape[0], roll.shape[1] + 1, N_KEYS, device=roll.device) < p
    drop[:, 0] = False
    dropped = torch.gather(drop, 1, note) & (onset | hold)  # every frame of a dropped note
    inputs = roll.masked_fill(dropped.repeat(1, 1, 3), 0.0)
    target_hold = roll[..., N_KEYS:2 * N_KEYS].masked_fill(dropped & ~onset, 0.0)
    targets = torch.cat([roll[..., :N_KEYS], target_hold, roll[..., 2 * N_KEYS:]], dim=-1)
    return inputs, targets


def played_frame(onset_l: torch.Tensor, hold_l: torch.Tensor, velocity: torch.Tensor,
                 prev: torch.Tensor) -> torch.Tensor:
    """The frame ``[..., F]`` played from a step's outputs (``[..., 88]`` each) after ``prev``
    (``[..., F]``, the frame before), decoded as the evaluation does: an onset where P(onset) >
    OWN_ONSET_THRESHOLD; a key sounds at its onset and while it sounded before and P(hold) >
    0.5; velocity at onsets, at least 1/127 (no onset cap)."""
    onset = torch.sigmoid(onset_l) > OWN_ONSET_THRESHOLD
    sounding_before = prev[..., N_KEYS:2 * N_KEYS] > 0.5
    hold = onset | (sounding_before & (torch.sigmoid(hold_l) > 0.5))
    return torch.cat([onset.to(velocity.dtype), hold.to(velocity.dtype),
                      velocity.clamp(min=1 / 127) * onset], dim=-1)


class EmotionEmbedding(nn.Module):
    """``emotion [B, 4] @ table [4, E]``: a blend of quadrants is a blend of embeddings."""

    def __init__(self, emb_dim: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(N_EMOTIONS, emb_dim) * 0.5)

    def forward(self, emotion: torch.Tensor) -> torch.Tensor:
        return emotion @ self.table


class Encoder(nn.Module):
    """Bidirectional GRU over the steps, emotion embedding concatenated to every step."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(FRAME_SIZE, cfg.frame_proj)
        self.gru = nn.GRU(cfg.frame_proj + cfg.emb_dim, cfg.enc_hidden, batch_first=True,
                          bidirectional=True)
        width = 2 * cfg.enc_hidden
        self.attention = nn.Linear(width, 1) if cfg.attention else None
        pooled = (2 * width if cfg.attention else width) + (width if cfg.final_states else 0)
        self.final_states = cfg.final_states
        self.to_mu = nn.Linear(pooled + cfg.emb_dim, cfg.z_dim)
        self.to_logvar = nn.Linear(pooled + cfg.emb_dim, cfg.z_dim)

    def forward(self, roll: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.relu(self.proj(roll))  # [B, T, P]
        emb_steps = emb.unsqueeze(1).expand(-1, roll.shape[1], -1)
        out, last = self.gru(torch.cat([steps, emb_steps], dim=-1))  # [B, T, 2*He], [2, B, He]
        parts = [out.mean(dim=1)]
        if self.attention is not None:
            weights = torch.softmax(self.attention(out), dim=1)  # [B, T, 1], sums to 1 over T
            parts.append((weights * out).sum(dim=1))
        if self.final_states:
            parts += [last[0], last[1]]  # forward after step T-1, backward after step 0
        summary = torch.cat(parts + [emb], dim=-1)
        return self.to_mu(summary), self.to_logvar(summary).clamp(-12.0, 8.0)


class StepDecoder(nn.Module):
    """GRU decoder, one 16th step per call; z and the emotion embedding enter every step, and
    with a plan (``ModelConfig.plan_steps``) each step also gets its own projection of them."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.layers, self.hidden = cfg.layers, cfg.hidden
        self.plan_steps, self.plan_dim = cfg.plan_steps, cfg.plan_dim
        cond = cfg.z_dim + cfg.emb_dim
        plan = cfg.plan_dim if cfg.plan_steps else 0
        self.plan_in_gru = plan if not cfg.plan_head_only else 0
        self.plan = nn.Linear(cond, cfg.plan_steps * cfg.plan_dim) if cfg.plan_steps else None
        self.to_state = nn.Linear(cond, cfg.layers * cfg.hidden)
        self.gru = nn.GRU(FRAME_SIZE + cond + self.plan_in_gru, cfg.hidden, num_layers=cfg.layers,
                          batch_first=True)
        self.head = nn.Linear(cfg.hidden + cond + plan, FRAME_SIZE)

    def init_state(self, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        flat = torch.tanh(self.to_state(torch.cat([z, emb], dim=-1)))  # [B, L*H]
        state = flat.reshape(-1, self.layers, self.hidden).transpose(0, 1)
        if self.plan is not None:  # the step slot starts at 0
            state = torch.cat([state, torch.zeros_like(state[..., :1])], dim=-1)
        return state.contiguous()

    def slot_of(self, step: torch.Tensor) -> torch.Tensor:
        """``step`` (whole, non-negative float counts of steps) modulo plan_steps. ``fmod`` equals
        ``remainder`` for non-negative steps and exports as one ONNX node (remainder as four)."""
        return torch.fmod(step, self.plan_steps)

    def plan_at(self, plan: torch.Tensor, first_step: torch.Tensor, steps: int) -> torch.Tensor:
        """``plan [B, plan_steps * plan_dim]`` (``self.plan`` of z and the emotion embedding),
        ``first_step [B]`` (a float count of steps since ``init_state``) -> the plan vectors of
        steps first_step .. first_step + steps - 1, each modulo plan_steps: ``[B, steps, plan_dim]``."""
        plan = plan.reshape(plan.shape[0], self.plan_steps, self.plan_dim)
        offsets = torch.arange(steps, dtype=plan.dtype, device=plan.device)
        step = self.slot_of(first_step.unsqueeze(1) + offsets)  # [B, T]
        slots = torch.arange(self.plan_steps, dtype=plan.dtype, device=plan.device)
        pick = (step.unsqueeze(-1) == slots).to(plan.dtype)  # [B, T, plan_steps], one-hot
        return pick @ plan

    def plan_rows(self) -> torch.Tensor:
        """``self.plan``'s weight as ``[plan_steps, plan_dim, Z + E]``: entry s is slot s's rows."""
        return self.plan.weight.reshape(self.plan_steps, self.plan_dim, -1)

    def plan_of_step(self, cond: torch.Tensor, step: torch.Tensor,
                     rows: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``cond [B, Z + E]`` (z and the emotion embedding), ``step [B]`` (a whole float count
        of steps) -> that step's plan vector ``[B, plan_dim]``: ``plan_at(plan(cond), step,
        1)[:, 0]``, but only the slot's ``plan_dim`` rows of ``self.plan`` are multiplied (one
        step's work is 1/plan_steps of the projection; the exported one-step graphs use it).
        ``rows(slot [B])`` -> ``[B, plan_dim, Z + E]`` gives the weights (default: gathered from
        ``plan_rows()``; the int8 step passes its dequantised ones)."""
        slot = self.slot_of(step).long()  # [B], 0 <= slot < plan_steps
        weight = rows(slot) if rows is not None else self.plan_rows()[slot]  # [B, P, C]
        bias = self.plan.bias.reshape(self.plan_steps, self.plan_dim)[slot]  # [B, P]
        return (weight @ cond.unsqueeze(-1)).squeeze(-1) + bias

    def run(self, prev: torch.Tensor, z: torch.Tensor, emb: torch.Tensor, state: torch.Tensor,
            hidden_dropout: float = 0.0,
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``prev [B, T, F]`` -> onset/hold logits, velocity (``[B, T, 88]``), final state.
        ``hidden_dropout`` > 0 drops GRU outputs before the head (teacher-forced training)."""
        steps = prev.shape[1]
        cond_vec = torch.cat([z, emb], dim=-1)
        cond = cond_vec.unsqueeze(1).expand(-1, steps, -1)
        gru_in, head_in, gru_state = [prev, cond], [cond], state
        if self.plan is not None:
            first_step = state[0, :, -1]
            if steps == 1:  # streaming: the one step's rows of the plan only
                plan = self.plan_of_step(cond_vec, first_step).unsqueeze(1)
            else:
                plan = self.plan_at(self.plan(cond_vec), first_step, steps)
            head_in.append(plan)
            if self.plan_in_gru:
                gru_in.append(plan)
            gru_state = state[..., :-1].contiguous()
        out, state_out = self.gru(torch.cat(gru_in, dim=-1), gru_state)
        if hidden_dropout > 0.0:  # the state passed on stays whole: only the head's input drops
            out = F.dropout(out, hidden_dropout, training=True)
        frame = self.head(torch.cat([out] + head_in, dim=-1))
        onset, hold, vel = frame.split(N_KEYS, dim=-1)
        if self.plan is not None:
            state_out = self.with_step_slot(state_out, first_step + steps)
        return onset, hold, torch.sigmoid(vel), state_out

    def with_step_slot(self, gru_state: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """``gru_state [L, B, H]`` + the step count ``step [B]`` -> the state ``[L, B, H + 1]``,
        its last slot ``step`` modulo plan_steps (the invariant: 0 <= slot < plan_steps)."""
        slot = self.slot_of(step).reshape(1, -1, 1).expand(self.layers, -1, 1)
        return torch.cat([gru_state, slot], dim=-1)


class CVAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = EmotionEmbedding(cfg.emb_dim)
        self.encoder = Encoder(cfg)
        self.decoder = StepDecoder(cfg)
        # Velocity calibration of the streaming output, per quadrant (blended by the emotion
        # weights): v' = clamp(gain * v + bias, 0, 1). Identity unless set_velocity_calibration
        # is called (after training, from measured velocity statistics; see calibrate.py).
        self.register_buffer("vel_gain", torch.ones(N_EMOTIONS), persistent=False)
        self.register_buffer("vel_bias", torch.zeros(N_EMOTIONS), persistent=False)

    def set_velocity_calibration(self, gain: list[float], bias: list[float]) -> None:
        self.vel_gain.copy_(torch.tensor(gain, dtype=torch.float32))
        self.vel_bias.copy_(torch.tensor(bias, dtype=torch.float32))

    def encode(self, roll: torch.Tensor, emotion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(roll, self.embed(emotion))

    def decoder_init(self, z: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        return self.decoder.init_state(z, self.embed(emotion))

    def decoder_step(self, prev: torch.Tensor, z: torch.Tensor, emotion: torch.Tensor,
                     state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One step: ``prev [B, F]`` -> onset/hold logits, velocity ``[B, 88]``, state_out."""
        onset, hold, vel, state_out = self.decoder.run(prev.unsqueeze(1), z, self.embed(emotion),
                                                       state)
        return onset[:, 0], hold[:, 0], self.calibrate_velocity(vel[:, 0], emotion), state_out

    def calibrate_velocity(self, velocity: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        """``velocity [B, 88]`` in 0..1 -> ``clamp(gain * v + bias, 0, 1)``, gain and bias
        blended from the per-quadrant calibration by ``emotion [B, 4]``."""
        gain = emotion @ self.vel_gain.unsqueeze(1)  # [B, 1]; unsqueezing the constant saves a node
        bias = emotion @ self.vel_bias.unsqueeze(1)
        return torch.clamp(velocity * gain + bias, 0.0, 1.0)

    def forward_teacher(self, roll: torch.Tensor, z: torch.Tensor, emotion: torch.Tensor,
                        input_dropout: float = 0.0, hidden_dropout: float = 0.0,
                        own_frames: float = 0.0, free_run: float = 0.0,
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced decoding of ``roll [B, T, F]``: step t sees frame t-1 (zeros at t=0).
        ``input_dropout``: the probability that step t sees zeros in place of frame t-1 (each
        step drawn on its own; training only), so that the decoder must take more from z.
        ``hidden_dropout``: dropout on the GRU's outputs before the head (training only).
        ``own_frames``: the probability that step t sees the frame the decoder itself would
        have played at t-1 (:meth:`own_frames`) instead of the true one (training only): the
        decoder learns to go on from its own mistakes, as it must when it runs free.
        ``free_run``: the probability that a segment's steps all see the frames the decoder
        played running free from z (:meth:`free_run_frames`; training only); targets stay
        the true frames."""
        prev = shifted(roll)
        emb = self.embed(emotion)
        if own_frames > 0.0:
            mine = self.own_frames(prev, z, emb)
            swap = torch.rand(prev.shape[:2] + (1,), device=prev.device) < own_frames
            prev = torch.where(swap, mine, prev)
        if free_run > 0.0:  # whole segments on the decoder's own free-running frames
            rows = torch.nonzero(torch.rand(prev.shape[0]) < free_run).squeeze(1)
            if len(rows):
                prev = prev.index_copy(0, rows, self.free_run_frames(z[rows], emb[rows],
                                                                     prev.shape[1]))
        if input_dropout > 0.0:
            keep = torch.rand(prev.shape[:2] + (1,), device=prev.device) >= input_dropout
            prev = prev * keep.to(prev.dtype)
        onset, hold, vel, _ = self.decoder.run(prev, z, emb, self.decoder.init_state(z, emb),
                                               hidden_dropout)
        return onset, hold, vel

    @torch.no_grad()
    def own_frames(self, prev: torch.Tensor, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """The frames ``[B, T, F]`` the decoder plays after seeing ``prev`` (a teacher-forced
        pass without gradient), shifted like ``prev``: entry t is its frame for step t-1 (zeros
        at t=0), played by :func:`played_frame`."""
        onset_l, hold_l, vel, _ = self.decoder.run(prev, z, emb, self.decoder.init_state(z, emb))
        return shifted(played_frame(onset_l, hold_l, vel, prev))

    @torch.no_grad()
    def free_run_frames(self, z: torch.Tensor, emb: torch.Tensor, steps: int) -> torch.Tensor:
        """``[B, steps, F]``: the frames the decoder plays running free from z (no gradient),
        shifted like ``prev`` of forward_teacher: entry t is the frame it played at step t-1
        (zeros at t=0), each step seeing the one before, as the engine and the evaluation run."""
        state = self.decoder.init_state(z, emb)
        frames = [torch.zeros(z.shape[0], FRAME_SIZE, dtype=z.dtype, device=z.device)]
        for _ in range(steps - 1):
            onset_l, hold_l, vel, state = self.decoder.run(frames[-1].unsqueeze(1), z, emb, state)
            frames.append(played_frame(onset_l[:, 0], hold_l[:, 0], vel[:, 0], frames[-1]))
        return torch.stack(frames, dim=1)

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def read_checkpoint(path: str | Path) -> dict:
    """The dict a checkpoint file holds (train.py's layout, or recover.py's); ValueError saying
    why when ``path`` is missing or is not a checkpoint (another file, truncated, corrupt)."""
    if Path(path).is_dir():
        raise ValueError(f"checkpoint {path} is a folder; give its ckpt.pt ({Path(path) / 'ckpt.pt'})")
    if not Path(path).is_file():
        raise ValueError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - pickle and zip errors of every kind: not a checkpoint
        raise ValueError(f"{path} is not a checkpoint written by training ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'unreadable'})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise ValueError(f"{path} is not a checkpoint written by training (no model weights in it)")
    args = ckpt["model_args"]
    known = {f.name for f in fields(ModelConfig)}
    # Every checkpoint has written z_dim and hidden; a later field missing gets its default.
    if not isinstance(args, dict) or not {"z_dim", "hidden"} <= args.keys() or args.keys() - known:
        unknown = sorted(map(str, args.keys() - known)) if isinstance(args, dict) else []
        why = f"model settings this version does not know: {', '.join(unknown)}" if unknown else \
            "no model sizes in it"
        raise ValueError(f"{path} is not a checkpoint written by this version of training ({why})")
    return ckpt

