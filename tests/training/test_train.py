"""Training: losses fall, the command writes checkpoints/metrics, resumes, and exports."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emolive.training import export, train
from emolive.training.config import TrainConfig
from emolive.training.losses import EmotionHeads, compute_losses, segment_stats
from emolive.training.model import CVAE, drop_notes, held_from_before, shifted, start_from_silence
from midi_factory import write_midi
from tiny_run import TINY, tiny_args

pytestmark = pytest.mark.training


@pytest.mark.parametrize("plan_steps", [0, 16])
def test_a_few_steps_lower_the_loss(labelled_folder, tmp_path: Path, plan_steps: int) -> None:
    folder, csv_path = labelled_folder
    cfg = TrainConfig(datasets=[], generic_folder=str(folder), generic_csv=str(csv_path),
                      cache_dir=str(tmp_path / "cache"), min_onsets=1, transpose=0)
    prep = train.load_data(cfg, log=lambda _: None)
    batches = train.SegmentBatches(prep, "train", cfg, seed=0)
    roll, emotion, label = batches.tensors(np.arange(len(batches)))
    torch.manual_seed(0)
    model, heads = CVAE(TrainConfig(z_dim=8, hidden=32, enc_hidden=16, frame_proj=16, emb_dim=4,
                                    plan_steps=plan_steps, plan_dim=8).model_config()), EmotionHeads(8)
    opt = torch.optim.Adam(list(model.parameters()) + list(heads.parameters()), lr=3e-3)
    args = {"beta": 0.1, "free_bits": 0.1, "adv_weight": 0.3, "critic_weight": 1.0}
    first = None
    for _ in range(30):
        losses = compute_losses(model, heads, roll, emotion, label, **args)
        first = first if first is not None else {k: v.item() for k, v in losses.items()}
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
    model.eval()
    last = compute_losses(model, heads, roll, emotion, label, **args)
    assert last["recon"].item() < 0.5 * first["recon"]
    assert last["onset_bce"].item() < first["onset_bce"]
    assert last["critic_real"].item() < first["critic_real"]


def _tiny_decoder_case(**sizes) -> tuple[CVAE, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A tiny CVAE (seeded), a random roll ``[3, 16, 264]``, z ``[3, 8]`` and three emotions."""
    torch.manual_seed(0)
    model = CVAE(TrainConfig(z_dim=8, hidden=24, enc_hidden=16, frame_proj=16, emb_dim=4,
                             **sizes).model_config())
    roll = (torch.rand(3, 16, 264) > 0.8).float()
    return model, roll, torch.randn(3, 8), torch.eye(4)[:3]


def test_input_dropout_hides_previous_frames_in_training_only() -> None:
    """A step whose previous frame is dropped decodes as if that frame were silent; with the
    rate at 0 (and so in validation) teacher forcing is unchanged."""
    model, roll, z, emotion = _tiny_decoder_case()
    silent = torch.zeros_like(roll)
    with torch.no_grad():
        full = model.forward_teacher(roll, z, emotion)[0]
        unchanged = model.forward_teacher(roll, z, emotion, input_dropout=0.0)[0]
        nothing_seen = model.forward_teacher(silent, z, emotion)[0]
        mostly_dropped = model.forward_teacher(roll, z, emotion, input_dropout=0.999)[0]
        half = model.forward_teacher(roll, z, emotion, input_dropout=0.5)[0]
    assert torch.equal(full, unchanged)
    assert torch.allclose(mostly_dropped, nothing_seen, atol=1e-6)
    assert not torch.allclose(half, full) and not torch.allclose(half, nothing_seen)


def test_hidden_dropout_changes_teacher_forcing_only_when_asked() -> None:
    """Dropout on the GRU outputs moves the logits when set and leaves them exactly alone at 0
    (validation and the exported steps never drop)."""
    model, roll, z, emotion = _tiny_decoder_case()
    with torch.no_grad():
        full = model.forward_teacher(roll, z, emotion)[0]
        unchanged = model.forward_teacher(roll, z, emotion, hidden_dropout=0.0)[0]
        dropped = model.forward_teacher(roll, z, emotion, hidden_dropout=0.5)[0]
    assert torch.equal(full, unchanged)
    assert not torch.allclose(dropped, full)


def test_own_frames_feed_the_decoder_its_own_previous_frames_in_training_only() -> None:
    """At rate 0 teacher forcing is unchanged; at rate ~1 every step sees the frame the decoder
    played one step before (own_frames), so the logits equal teacher forcing on those frames;
    the frames are played as the evaluation decodes (threshold, holds, velocity at onsets)."""
    model, roll, z, emotion = _tiny_decoder_case()
    prev = shifted(roll)
    with torch.no_grad():
        full = model.forward_teacher(roll, z, emotion)[0]
        unchanged = model.forward_teacher(roll, z, emotion, own_frames=0.0)[0]
        all_own = model.forward_teacher(roll, z, emotion, own_frames=1.0 - 1e-9)[0]
        mine = model.own_frames(prev, z, model.embed(emotion))
        onset_l, hold_l, vel = model.forward_teacher(roll, z, emotion)
        # teacher forcing on a roll whose frames are the decoder's own: step t then sees mine[t]
        on_mine = model.forward_teacher(torch.cat([mine[:, 1:], mine[:, :1]], dim=1), z,
                                        emotion)[0]
    assert torch.equal(full, unchanged)
    assert torch.allclose(all_own, on_mine, atol=1e-6)
    assert not torch.allclose(all_own, full)
    assert torch.equal(mine[:, 0], torch.zeros_like(mine[:, 0]))
    onset = torch.sigmoid(onset_l[:, :-1]) > 0.3
    assert torch.equal(mine[:, 1:, :88], onset.float())
    assert torch.equal(mine[:, 1:, 88:176] >= mine[:, 1:, :88], torch.ones_like(onset))
    assert torch.equal(mine[:, 1:, 176:], vel[:, :-1].clamp(min=1 / 127) * onset)


@pytest.mark.parametrize("plan_steps", [0, 8])
def test_free_run_frames_are_what_the_exported_decoder_plays(tmp_path: Path,
                                                             plan_steps: int) -> None:
    """CVAE.free_run_frames (training, PyTorch) and OnnxCVAE.generate (evaluation, ONNX
    Runtime, deterministic at the same threshold, no cap) play the same frames."""
    from emolive.training.card import build_card
    from emolive.training.model import OWN_ONSET_THRESHOLD
    from emolive.training.onnx_runner import OnnxCVAE, Sampling

    torch.manual_seed(1)
    model = CVAE(TrainConfig(z_dim=8, hidden=24, enc_hidden=16, frame_proj=16, emb_dim=4,
                             plan_steps=plan_steps, plan_dim=4).model_config()).eval()
    export.export_model(model, tmp_path / "m", build_card(model.cfg, name="t"), "float32")
    z, emotion = torch.randn(5, 8), torch.eye(4)[[0, 1, 2, 3, 0]]
    with torch.no_grad():
        mine = model.free_run_frames(z, model.embed(emotion), 16)
    sampling = Sampling(onset_threshold=OWN_ONSET_THRESHOLD, sample=False, max_onsets_per_step=0)
    played = OnnxCVAE(tmp_path / "m").generate(z.numpy(), emotion.numpy(), 16, sampling,
                                              np.random.default_rng(0))
    assert torch.equal(mine[:, 0], torch.zeros_like(mine[:, 0]))
    onsets = mine[:, 1:, :88]
    assert 0 < onsets.mean() < 1  # the comparison is not between two silences
    assert np.array_equal(mine[:, 1:, :176].numpy(), played[:, :-1, :176])
    assert np.allclose(mine[:, 1:, 176:].numpy(), played[:, :-1, 176:], atol=1e-5)


def test_free_run_decodes_whole_segments_on_the_decoders_own_frames() -> None:
    model, roll, z, emotion = _tiny_decoder_case()
    with torch.no_grad():
        full = model.forward_teacher(roll, z, emotion)[0]
        unchanged = model.forward_teacher(roll, z, emotion, free_run=0.0)[0]
        free = model.forward_teacher(roll, z, emotion, free_run=1.0)[0]
        mine = model.free_run_frames(z, model.embed(emotion), 16)
        on_mine = model.forward_teacher(torch.cat([mine[:, 1:], mine[:, :1]], dim=1), z,
                                        emotion)[0]
    assert torch.equal(full, unchanged)
    assert torch.allclose(free, on_mine, atol=1e-6)
    assert not torch.allclose(free, full)


def _two_notes_roll(batch: int) -> torch.Tensor:
    """``[batch, 5, 264]``: key 0 sounds from before the segment (steps 0-2), then is struck at
    step 3 (velocity 0.5, steps 3-4); key 1 is struck at step 0 (velocity 0.7, steps 0-2)."""
    roll = torch.zeros(batch, 5, 264)
    roll[:, 0:3, 88] = 1
    roll[:, 3, 0], roll[:, 3, 176] = 1, 0.5
    roll[:, 3:5, 88] = 1
    roll[:, 0, 1], roll[:, 0, 177] = 1, 0.7
    roll[:, 0:3, 89] = 1
    return roll


def test_start_from_silence_takes_out_only_the_notes_begun_before_the_segment() -> None:
    """Key 0 sounds from before the segment until struck again at step 3, key 1 starts at step
    0, key 2 sounds from before at step 0 and is sounding again (no onset) at step 2: only key
    0's steps 0-2 and key 2's step 0 go; onsets and velocities stay."""
    roll = _two_notes_roll(batch=2)
    roll[:, 0, 90] = roll[:, 2, 90] = 1
    before = held_from_before(roll)
    expected = torch.zeros(2, 5, 88, dtype=torch.bool)
    expected[:, 0:3, 0] = True
    expected[:, 0, 2] = True
    assert torch.equal(before, expected)
    silent = start_from_silence(roll, 1.0)
    assert torch.equal(silent[..., 88:176], roll[..., 88:176] * ~expected)
    assert torch.equal(silent[..., :88], roll[..., :88])
    assert torch.equal(silent[..., 176:], roll[..., 176:])
    assert start_from_silence(roll, 0.0) is roll


def test_drop_notes_takes_whole_notes_begun_in_the_segment_out_of_the_inputs_only() -> None:
    """Key 0 sounds from before the segment (steps 0-2), then is struck at step 3 (3-4); key 1
    is struck at step 0 (0-2). With p = 1 both notes begun in the segment leave the inputs
    (onset, hold, velocity); in the targets they keep their onsets, velocities and the hold of
    their onset step, and lose their later holds. The note from before stays everywhere."""
    roll = _two_notes_roll(batch=1)
    inputs, targets = drop_notes(roll, 1.0)
    expected_inputs = roll.clone()
    expected_inputs[:, 3:5, [0, 88, 176]] = 0
    expected_inputs[:, 0:3, [1, 89, 177]] = 0
    assert torch.equal(inputs, expected_inputs)
    expected_targets = roll.clone()
    expected_targets[:, 4, 88] = 0
    expected_targets[:, 1:3, 89] = 0
    assert torch.equal(targets, expected_targets)
    assert drop_notes(roll, 0.0) == (roll, roll)


def test_drop_notes_drops_each_note_whole_and_independently() -> None:
    """Key 0 struck at steps 0, 4, 8 and 12 (4 steps each) in 64 segments: with p = 0.5 each
    note leaves the inputs whole or not at all, and about half of them go."""
    torch.manual_seed(0)
    roll = torch.zeros(64, 16, 264)
    roll[:, ::4, 0] = 1
    roll[:, :, 88] = 1
    inputs, _ = drop_notes(roll, 0.5)
    kept = inputs[:, :, 88].reshape(64, 4, 4)  # [segment, note, step of the note]
    assert torch.all((kept == 0).all(-1) | (kept == 1).all(-1))
    assert 0.35 < float((kept[..., 0] == 0).float().mean()) < 0.65


def _losses_from_seed_3(model: CVAE, roll: torch.Tensor, emotion: torch.Tensor,
                        **option: float) -> dict[str, torch.Tensor]:
    """compute_losses on the tiny case (emotion terms off) with ``option``, from seed 3, in the
    model's current mode. A test redoes the option's draws after ``torch.manual_seed(3)`` in
    compute_losses's order: the option's draws, then z's noise."""
    heads = EmotionHeads(model.cfg.z_dim)  # before the seed: its initialisation draws too
    torch.manual_seed(3)
    return compute_losses(model, heads, roll, emotion, torch.arange(3), beta=0.2, free_bits=0.1,
                          adv_weight=0.0, critic_weight=0.0, **option)


def _validation_ignores(model: CVAE, roll: torch.Tensor, emotion: torch.Tensor,
                        **option: float) -> bool:
    model.eval()
    with torch.no_grad():
        return torch.equal(_losses_from_seed_3(model, roll, emotion, **option)["recon"],
                           _losses_from_seed_3(model, roll, emotion)["recon"])


def test_silent_start_trains_the_decoder_on_segments_without_earlier_notes() -> None:
    """In training, silent_start 1 gives the decoder's inputs and hold targets without the
    notes begun before the segment (the encoder still sees them); validation is unchanged."""
    model, roll, _, emotion = _tiny_decoder_case()
    roll[:, :4, 88:176] = 1.0  # every key sounds from before the segment for 4 steps
    roll[:, :4, :88] = 0.0
    roll[:, :4, 176:] = 0.0
    model.train()
    trained = _losses_from_seed_3(model, roll, emotion, silent_start=1.0)
    torch.manual_seed(3)
    mu, logvar = model.encode(roll, emotion)
    silent = start_from_silence(roll, 1.0)  # draws its segments before z's noise is drawn
    z = model.reparameterise(mu, logvar)
    hold_l = model.forward_teacher(silent, z, emotion)[1]
    assert torch.allclose(trained["hold_bce"],
                          F.binary_cross_entropy_with_logits(hold_l, silent[..., 88:176]))
    plain = _losses_from_seed_3(model, roll, emotion)
    assert not torch.allclose(trained["hold_bce"], plain["hold_bce"])
    assert _validation_ignores(model, roll, emotion, silent_start=1.0)


def test_missed_notes_trains_on_inputs_without_the_dropped_notes_and_keeps_their_onsets() -> None:
    """In training, missed_notes 1 decodes from inputs without the notes begun in the segment
    and scores the onsets against the full roll; validation is unchanged."""
    model, roll, _, emotion = _tiny_decoder_case()
    model.train()
    trained = _losses_from_seed_3(model, roll, emotion, missed_notes=1.0)
    torch.manual_seed(3)
    mu, logvar = model.encode(roll, emotion)
    inputs, targets = drop_notes(roll, 1.0)  # draws its notes before z's noise, as compute_losses
    z = model.reparameterise(mu, logvar)
    onset_l = model.forward_teacher(inputs, z, emotion)[0]
    assert torch.equal(targets[..., :88], roll[..., :88])
    assert torch.allclose(trained["onset_bce"],
                          F.binary_cross_entropy_with_logits(onset_l, roll[..., :88]))
    plain = _losses_from_seed_3(model, roll, emotion)
    assert not torch.allclose(trained["onset_bce"], plain["onset_bce"])
    assert _validation_ignores(model, roll, emotion, missed_notes=1.0)


class _FixedModel:
    """A stand-in for the CVAE with outputs chosen so that every loss term is known by hand:
    onset and hold logits 0 (BCE ln 2 whatever the target), velocity 0.5 everywhere."""

    training = False

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        self.mu, self.logvar = mu, logvar

    def encode(self, roll: torch.Tensor, emotion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu, self.logvar

    def reparameterise(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def forward_teacher(self, inputs: torch.Tensor, z: torch.Tensor, emotion: torch.Tensor,
                        *options: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(inputs.shape[0], inputs.shape[1], 88)
        return zeros, zeros, torch.full_like(zeros, 0.5)


def _two_segments_of_two_steps() -> torch.Tensor:
    """``[2, 2, 264]``: one onset in each segment (C4 at step 0, velocity 0.75), nothing else."""
    roll = torch.zeros(2, 2, 264)
    roll[:, 0, 39] = roll[:, 0, 88 + 39] = 1.0
    roll[:, 0, 176 + 39] = 0.75
    return roll


def test_loss_terms_are_scaled_as_docs_training_md_says() -> None:
    """docs/training.md, "Losses": BCE summed over the 88 keys and averaged over steps; velocity
    MSE over the onsets only; KL per dimension averaged over the batch, at least the free bits,
    summed over dimensions and divided by the segment's steps."""
    mu = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    model = _FixedModel(mu, torch.zeros(2, 2))
    losses = compute_losses(model, EmotionHeads(2), _two_segments_of_two_steps(), torch.eye(4)[:2],
                            torch.tensor([-1, -1]), beta=1.0, free_bits=0.1, adv_weight=0.0,
                            critic_weight=0.0)
    ln2 = float(np.log(2.0))
    assert losses["onset_bce"].item() == pytest.approx(ln2)
    assert losses["hold_bce"].item() == pytest.approx(ln2)
    # Both onsets off by 0.75 - 0.5: 0.0625 (the 350 silent key-steps at velocity 0 do not count).
    assert losses["vel_mse"].item() == pytest.approx(0.0625)
    recon = 88 * (ln2 + ln2) + 0.0625
    assert losses["recon"].item() == pytest.approx(recon)
    # KL with logvar 0 is mu^2 / 2: dimension 0 (1 + 9) / 2 / 2 = 2.5 (the batch's mean), dimension 1
    # 0, counted as the free bits 0.1: 2.6 in all, over 2 steps.
    assert losses["kl"].item() == pytest.approx(2.5)
    assert losses["total"].item() == pytest.approx(recon + 2.6 / 2)


def test_the_emotion_terms_learn_from_q1_labels_too() -> None:
    """Label 0 is Q1 (happy), a label; only -1 is none."""
    model = _FixedModel(torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.zeros(2, 2))
    roll, emotion = _two_segments_of_two_steps(), torch.eye(4)[:2]
    torch.manual_seed(0)
    heads = EmotionHeads(2)
    args = {"beta": 1.0, "free_bits": 0.1, "adv_weight": 0.3, "critic_weight": 1.0}
    q1 = compute_losses(model, heads, roll, emotion, torch.tensor([0, 0]), **args)
    for term in ("adv_ce", "critic_real", "critic_fake"):
        assert q1[term].item() > 0.0, term
    none = compute_losses(model, heads, roll, emotion, torch.tensor([-1, -1]), **args)
    assert none["adv_ce"].item() == 0.0 and none["critic_real"].item() == 0.0


def test_the_adversary_reverses_its_gradient_into_the_encoder_only() -> None:
    """The adversary learns to read the emotion from mu; the encoder gets the opposite gradient."""
    mu = torch.tensor([[1.0, -1.0], [0.5, 2.0]], requires_grad=True)
    model = _FixedModel(mu, torch.zeros(2, 2))
    torch.manual_seed(0)
    heads = EmotionHeads(2)
    label = torch.tensor([0, 2])
    losses = compute_losses(model, heads, _two_segments_of_two_steps(), torch.eye(4)[:2], label,
                            beta=1.0, free_bits=0.1, adv_weight=1.0, critic_weight=0.0)
    losses["adv_ce"].backward()
    reversed_grad, head_grad = mu.grad.clone(), heads.adversary[0].weight.grad.clone()
    plain_mu = mu.detach().clone().requires_grad_(True)
    heads.zero_grad()
    F.cross_entropy(heads.adversary(plain_mu), label).backward()
    assert torch.allclose(reversed_grad, -plain_mu.grad), "the encoder's gradient is reversed"
    assert torch.allclose(head_grad, heads.adversary[0].weight.grad), "the adversary's is not"


def test_validation_losses_use_the_posterior_mean_and_draw_nothing() -> None:
    model, roll, _z, emotion = _tiny_decoder_case()
    model.eval()
    heads = EmotionHeads(model.cfg.z_dim)
    args = {"beta": 0.2, "free_bits": 0.1, "adv_weight": 0.0, "critic_weight": 0.0}
    with torch.no_grad():
        torch.manual_seed(1)
        first = compute_losses(model, heads, roll, emotion, torch.arange(3), **args)
        torch.manual_seed(2)
        second = compute_losses(model, heads, roll, emotion, torch.arange(3), **args)
    assert torch.equal(first["total"], second["total"])


def test_segment_stats_are_transposition_invariant_and_tell_major_from_minor() -> None:
    hold = torch.zeros(1, 4, 88)
    hold[0, :, [39, 43, 46]] = 1.0  # C major triad (C4 E4 G4)
    minor = torch.zeros(1, 4, 88)
    minor[0, :, [39, 42, 46]] = 1.0  # C minor triad
    shifted = torch.roll(hold, 5, dims=2)
    onset = torch.zeros_like(hold)
    major_stats = segment_stats(onset, hold, onset)
    # Everything but the register (mean key) is invariant to transposition.
    assert torch.allclose(major_stats[0, :16], segment_stats(onset, shifted, onset)[0, :16])
    minor_stats = segment_stats(onset, minor, onset)
    # The interval profile cannot tell them apart (mirror images); the mode features can.
    assert torch.allclose(major_stats[0, :12], minor_stats[0, :12])
    major_key, minor_key, major_triads, minor_triads = major_stats[0, 12:16]
    assert major_key > minor_key and major_triads > 0 and minor_triads == 0
    m_major_key, m_minor_key, m_major_triads, m_minor_triads = minor_stats[0, 12:16]
    assert m_minor_key > m_major_key and m_minor_triads > 0 and m_major_triads == 0


def _scale_clip(tonic_pitch: int, minor: bool) -> np.ndarray:
    """A uint8 roll: two bars of the scale on ``tonic_pitch``, tonic triad held under it."""
    from emolive.training.features import notes_to_roll

    steps = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    third = 3 if minor else 4
    pitch = [tonic_pitch + 12 + s for s in steps] * 4 + [tonic_pitch, tonic_pitch + third,
                                                        tonic_pitch + 7] * 4
    start = list(range(28)) + [8 * (i // 3) for i in range(12)]
    pitch, start = np.array(pitch), np.array(start, dtype=np.float64)
    return notes_to_roll(pitch, np.full(len(pitch), 80), start, start + 4)


def test_key_normalise_moves_every_clip_to_c_and_keeps_its_mode() -> None:
    from emolive.training.metrics import estimate_key, pitch_class_hist
    from emolive.training.prepare import Prepared

    clips = [_scale_clip(55, minor=False), _scale_clip(57, minor=True), _scale_clip(61, False)]
    prep = Prepared(clips, np.array([0, 2, 3]), np.array(["train"] * 3), ["a", "b", "c"],
                    ["a", "b", "c"], ["x"] * 3)
    assert train.tonic_shifts(prep).tolist() == [5, 3, -1]  # G up 5, A minor up 3, C# down 1
    cfg = TrainConfig(transpose=0, key_normalise=True, min_onsets=1)
    roll, _, label = train.SegmentBatches(prep, "train", cfg, 0).tensors(np.arange(3))
    tonic, major = estimate_key(pitch_class_hist(roll.numpy()))
    assert tonic.tolist() == [0, 0, 0] and major.tolist() == [True, False, True]
    assert label.tolist() == [0, 2, 3]
    plain = train.SegmentBatches(prep, "train", TrainConfig(transpose=0, min_onsets=1), 0)
    assert estimate_key(pitch_class_hist(plain.tensors(np.arange(3))[0].numpy()))[0].tolist() == [7, 9, 1]
    # Octave shifts on top keep the key and move the register by whole octaves.
    octave = train.SegmentBatches(prep, "train", TrainConfig(transpose=0, key_normalise=True,
                                                             octaves=1, min_onsets=1), 0)
    moved, _, moved_label = octave.sample(64)
    assert (estimate_key(pitch_class_hist(moved.numpy()))[0] == 0).all()

    def lowest_key(segments: np.ndarray) -> np.ndarray:
        return np.array([np.nonzero(seg[:, :88].any(0))[0].min() for seg in segments])

    clip_of_label = {0: 0, 2: 1, 3: 2}
    normal_low = lowest_key(roll.numpy())
    offsets = lowest_key(moved.numpy()) - normal_low[[clip_of_label[q] for q in moved_label.tolist()]]
    assert set(offsets.tolist()) == {-12, 0, 12}


def test_key_normalise_refuses_random_transposition() -> None:
    from emolive.training.config import _validate

    with pytest.raises(ValueError, match="transpose to 0"):
        _validate(TrainConfig(transpose=5, key_normalise=True))
    _validate(TrainConfig(transpose=0, key_normalise=True))


@pytest.mark.parametrize("plan_steps", [-1, 24, 64])
def test_a_plan_must_divide_the_segment(plan_steps: int) -> None:
    from emolive.training.config import _validate

    with pytest.raises(ValueError, match="plan_steps must be 0"):
        _validate(TrainConfig(segment_bars=2, plan_steps=plan_steps))
    _validate(TrainConfig(segment_bars=2, plan_steps=16))


def test_train_command_checkpoints_resumes_and_exports(labelled_folder, tmp_path: Path) -> None:
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 10)) == 0
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10]
    ckpt = torch.load(run / "ckpt.pt", weights_only=False)
    assert ckpt["iter_num"] == 10 and ckpt["model_args"]["z_dim"] == 8
    assert (run / "best.pt").is_file()

    assert train.main(tiny_args(folder, csv_path, tmp_path, 15) + ["--resume", "true"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15]

    out = tmp_path / "model"
    assert export.main(["--checkpoint", str(run / "ckpt.pt"), "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["sizes"]["z"] == 8 and card["sizes"]["hidden"] == 24
    assert all((out / name).is_file() for name in card["files"].values())
    assert card["precision"]["decoder_step"] == "float32"
    assert card["tonic"] is None  # trained in every key
    assert card["training"]["resumed_at"] == [10]  # the step the run went on from

    out8 = tmp_path / "model-int8"
    assert export.main(["--checkpoint", str(run / "ckpt.pt"), "--out", str(out8),
                        "--decoder-precision", "int8"]) == 0
    card8 = json.loads((out8 / "model_card.json").read_text())
    assert card8["precision"]["decoder_step"].startswith("int8")
    assert card8["training"] == card["training"]


def test_an_emotion_left_without_training_segments_is_warned_of(labelled_folder, tmp_path: Path, capsys) -> None:
    """The loaders' counts came before the notes were read: a quadrant whose clips were all too
    sparse (or unreadable) was trained without a word (helper-61)."""
    folder, csv_path = labelled_folder
    write_midi(folder / "song3.mid", [(60, 50, 0.0, 1.0), (64, 50, 1.0, 2.0)])  # the calm train song
    assert train.main(tiny_args(folder, csv_path, tmp_path, 1) + ["--min-onsets", "4"]) == 0
    out = capsys.readouterr().err
    assert re.search(r"train segments: \d+ \(Q1 \d+, Q2 \d+, Q3 \d+, Q4 0\)\n", out), out
    assert "1 train clip gave no segment (fewer than 4 onsets in every segment; --min-onsets):" in out
    assert str(folder / "song3.mid") in out
    assert "warning: no training segment of Q4 (calm): nothing is learnt of that emotion" in out
    assert "warning" not in out.split("val segments:")[1].split("\n")[0]


def test_a_key_normalised_model_says_so_in_its_card(labelled_folder, tmp_path: Path) -> None:
    folder, csv_path = labelled_folder
    argv = tiny_args(folder, csv_path, tmp_path, 5) + ["--key-normalise", "true", "--transpose", "0"]
    assert train.main(argv) == 0
    out = tmp_path / "model"
    assert export.main(["--checkpoint", str(tmp_path / "run" / "ckpt.pt"), "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["tonic"] == 0 and card["training"]["config"]["key_normalise"] is True


@pytest.mark.parametrize("argv,message", [
    (["--datasets", "nope"], "unknown datasets"),
    # One source named twice trained its clips twice, exit 0.
    (["--datasets", "emopia", "emopia"], "--datasets names 'emopia' and 'emopia', which are one source"),
    (["--datasets", "--unlabelled", "/nonexistent-u", "/nonexistent-u/"],
     "--unlabelled names '/nonexistent-u' and '/nonexistent-u/', which are one source"),
    (["--batch-size", "0"], "batch_size must be positive"),
    (["--config", "/nonexistent.json"], "not found; the package's recipes, by name: emopia, emopia_finetune,"),
    (["--config", "emopiaa"], "config file emopiaa not found, and the package holds no recipe of that name: emopia,"),
    (["--config", "emopia_card"], "no recipe of that name: emopia, emopia_finetune,"),  # a card's entries
    (["--data", "/nonexistent"], "not found"),
    (["--input-dropout", "1.0"], "input_dropout must be in [0, 1)"),
    (["--hidden-dropout", "-0.1"], "hidden_dropout must be in [0, 1)"),
    (["--own-frames", "1.5"], "own_frames must be in [0, 1]"),
    (["--free-run", "-0.5"], "free_run must be in [0, 1]"),
    (["--silent-start", "2"], "silent_start must be in [0, 1]"),
    (["--key-normalise", "true"], "set transpose to 0"),
    (["--octaves", "3"], "octaves must be in 0..2"),
    (["--datasets", "--unlabelled", "/nonexistent-pieces"], "unlabelled folder /nonexistent-pieces not found"),
    (["--lr", "-1"], "lr must be positive"),
    (["--min-lr-frac", "2"], "min_lr_frac must be in [0, 1]"),
    (["--init-from", "/nonexistent.pt"], "checkpoint /nonexistent.pt not found"),
    (["--init-from", "/"], "checkpoint / is a folder; give its ckpt.pt"),
])
def test_user_mistakes_exit_2_with_a_message(argv, message, capsys, tmp_path: Path) -> None:
    # No data by default: a mistake that were let through would fail at once, not train.
    assert train.main(["--data", str(tmp_path / "no-data")] + argv
                      + ["--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # a run that cannot start leaves nothing behind


def test_a_recipe_of_the_package_is_found_by_its_name_anywhere(tmp_path: Path, monkeypatch) -> None:
    """`--config training/configs/emopia.json` exists only in a checkout (helper-64)."""
    monkeypatch.chdir(tmp_path)
    from emolive.training.config import BUNDLED_CONFIGS, add_config_flags, config_path, given_values

    assert config_path("emopia_settle") == config_path("emopia_settle.json") == BUNDLED_CONFIGS / "emopia_settle.json"
    (tmp_path / "emopia.json").write_text("{}")  # a file of the user's comes first
    assert config_path("emopia.json") == Path("emopia.json")
    parser = argparse.ArgumentParser()
    add_config_flags(parser)
    assert given_values(parser.parse_args(["--config", "emopia_settle"]))["lr"] == 0.0002


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "must hold a JSON object of settings, not list"),
    ('"emopia"', "must hold a JSON object of settings, not str"),
    ('{"max_steps": "many"}', 'max_steps must be a whole number, got "many"'),
    ('{"max_steps": null}', "max_steps must be a whole number, got null"),
    ('{"transpose": 3.5}', "transpose must be a whole number, got 3.5"),
    ('{"lr": "fast"}', 'lr must be a number, got "fast"'),
    ('{"datasets": "emopia"}', 'datasets must be a list of names, got "emopia"'),
    ('{"attention": 1}', "attention must be true or false, got 1"),
    ('{"extends": 5}', '"extends" names another config file, not 5'),
])
def test_a_config_file_of_the_wrong_types_exits_2_naming_the_key(text, message, capsys, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(text)
    assert train.main(["--config", str(config), "--out", str(tmp_path / "r"),
                       "--data", str(tmp_path / "no-data")]) == 2
    assert message in capsys.readouterr().err


def test_a_config_file_may_write_whole_numbers_as_floats(tmp_path: Path) -> None:
    from emolive.training.config import _read_config_file

    config = tmp_path / "config.json"
    config.write_text('{"max_steps": 100.0, "lr": 1}')
    assert _read_config_file(config) == {"max_steps": 100, "lr": 1.0}


def test_a_run_folder_holding_a_run_is_not_overwritten(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "ckpt.pt").write_bytes(b"an earlier run")
    (run / "config.json").write_text("{}")
    assert train.main(["--out", str(run), "--data", str(tmp_path / "no-data"),
                       "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume true" in err
    assert (run / "ckpt.pt").read_bytes() == b"an earlier run"
    assert (run / "config.json").read_text() == "{}"


@pytest.mark.parametrize("model_args,why", [
    ({"z_dim": 8, "hidden": 24, "bogus": 1}, "model settings this version does not know: bogus"),
    ({}, "no model sizes in it"),
    ([8, 24], "no model sizes in it"),
])
def test_a_checkpoint_of_another_version_is_refused_with_a_line(tmp_path: Path, capsys, model_args,
                                                                 why: str) -> None:
    """A field this version does not know gave train's --init-from a TypeError traceback, and
    no sizes at all a message asking for the default sizes' flags."""
    checkpoint = tmp_path / "other.pt"
    torch.save({"model": {}, "model_args": model_args}, checkpoint)
    assert train.main(["--init-from", str(checkpoint), "--data", str(tmp_path / "no-data"),
                       "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"is not a checkpoint written by this version of training ({why})" in err, err
    assert "Traceback" not in err
    assert export.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "model")]) == 2
    assert why in capsys.readouterr().err


def test_a_file_that_is_not_a_checkpoint_is_refused_before_the_data_is_read(tmp_path: Path, capsys) -> None:
    not_a_checkpoint = tmp_path / "weights.pt"
    not_a_checkpoint.write_text('{"a": 1}')
    assert train.main(["--init-from", str(not_a_checkpoint), "--data", str(tmp_path / "no-data"),
                       "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "is not a checkpoint written by training" in err and "dataset folder" not in err
    assert export.main(["--checkpoint", str(not_a_checkpoint), "--out", str(tmp_path / "model")]) == 2
    assert "is not a checkpoint written by training" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def test_export_of_a_missing_checkpoint_exits_2(tmp_path: Path, capsys) -> None:
    assert export.main(["--checkpoint", str(tmp_path / "no.pt"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def _unlabelled_folder(tmp_path: Path) -> Path:
    from midi_factory import scale_notes, write_midi

    folder = tmp_path / "pieces"
    for song in range(12):  # none may hash to the 5% validation split: one is moved there
        write_midi(folder / f"piece{song}.mid", scale_notes(50 + song, song % 2 == 1, velocity=80))
    return folder


@pytest.mark.parametrize("unlabelled", ["vgmidi/unlabelled", "vgmidi/unlabelled/part", "vgmidi", ".", str(Path("/"))])
def test_an_unlabelled_folder_holding_or_in_a_labelled_dataset_is_refused(tmp_path: Path, unlabelled: str) -> None:
    """VGMIDI's labelled phrases are excerpts of its unlabelled pieces: both in one run trained
    on VGMIDI's own validation music (helper-81: 19 validation phrases, e.g. 'A Prayer to
    Zeus' in 'Battle_of_Olympus_APrayertoZeus.mid'); so did `--unlabelled .`, read whole
    (helper-82). Refused before anything is read."""
    from emolive.training.data import DataError

    (tmp_path / "vgmidi" / "unlabelled" / "part").mkdir(parents=True)
    (tmp_path / "pop909").mkdir()
    cfg = TrainConfig(data=str(tmp_path), datasets=["vgmidi"], unlabelled=[unlabelled])
    with pytest.raises(DataError, match=r"the run would train on its own validation music"):
        train.load_reports(cfg)
    with pytest.raises(DataError, match=r"not found"):  # pop909 beside vgmidi is no such case
        train.load_reports(TrainConfig(data=str(tmp_path), datasets=["vgmidi"], unlabelled=["pop909"]))


def test_unlabelled_segments_get_the_even_blend_and_no_emotion_loss() -> None:
    labels = torch.tensor([2, -1, 0])
    weights = train.emotion_weights(labels)
    assert torch.equal(weights[0], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert torch.allclose(weights[1], torch.full((4,), 0.25))
    torch.manual_seed(0)
    model = CVAE(TrainConfig(z_dim=8, hidden=16, enc_hidden=8, frame_proj=8, emb_dim=4).model_config())
    heads = EmotionHeads(8)
    roll = (torch.rand(3, 32, 264) > 0.9).float()
    args = {"beta": 0.1, "free_bits": 0.1, "adv_weight": 0.3, "critic_weight": 1.0}
    unlabelled = compute_losses(model, heads, roll, train.emotion_weights(labels * 0 - 1),
                                labels * 0 - 1, **args)
    assert unlabelled["adv_ce"].item() == 0.0 and unlabelled["critic_fake"].item() == 0.0
    unlabelled["total"].backward()  # still a graph: the reconstruction trains
    mixed = compute_losses(model, heads, roll, weights, labels, **args)
    only_labelled = compute_losses(model, heads, roll[[0, 2]], weights[[0, 2]], labels[[0, 2]],
                                   **args)
    assert mixed["critic_real"].item() == pytest.approx(only_labelled["critic_real"].item(), rel=1e-5)


def test_pretrain_on_unlabelled_then_fine_tune_from_it(labelled_folder, tmp_path: Path,
                                                       capsys) -> None:
    pieces = _unlabelled_folder(tmp_path)
    pre = tmp_path / "pre"
    assert train.main(["--datasets", "--unlabelled", str(pieces), "--cache-dir",
                       str(tmp_path / "cache"), "--out", str(pre), "--max-steps", "5", *TINY]) == 0
    assert "weights from" not in capsys.readouterr().err
    pretrained = torch.load(pre / "ckpt.pt", weights_only=False)
    assert pretrained["config"]["unlabelled"] == [str(pieces)]

    folder, csv_path = labelled_folder
    argv = tiny_args(folder, csv_path, tmp_path, 1) + ["--init-from", str(pre / "ckpt.pt"),
                                                        "--lr", "1e-12"]
    assert train.main(argv) == 0
    assert f"weights from {pre / 'ckpt.pt'} (step 5)" in capsys.readouterr().err
    tuned = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    assert tuned["iter_num"] == 1  # a new schedule, not a resumed one
    for name, value in pretrained["model"].items():  # one step at lr 1e-12 moves nothing
        assert torch.allclose(tuned["model"][name], value, atol=1e-6), name

    # The card of the fine-tuned model names the pre-training's data too, with its licence.
    assert export.main(["--checkpoint", str(tmp_path / "run" / "ckpt.pt"),
                        "--out", str(tmp_path / "model")]) == 0
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    names = [entry["name"] for entry in card["data"]]
    assert names == [f"user data ({csv_path})", f"unlabelled MIDI ({pieces})"]
    assert card["data"][1]["use"].startswith("unlabelled pre-training")
    assert card["licence"] == ("model weights derived from: "
                               f"user data ({csv_path}) (unknown), unlabelled MIDI ({pieces}) (unknown)")


def test_init_from_refuses_a_checkpoint_of_other_sizes(labelled_folder, tmp_path: Path,
                                                       capsys) -> None:
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2)) == 0
    argv = tiny_args(folder, csv_path, tmp_path, 2) + [
        "--init-from", str(tmp_path / "run" / "ckpt.pt"), "--z-dim", "6",
        "--out", str(tmp_path / "other")]
    assert train.main(argv) == 2
    assert "give the same model flags (--z-dim 8)" in capsys.readouterr().err


def test_init_from_says_when_the_tonic_setting_changes(labelled_folder, tmp_path: Path,
                                                       capsys) -> None:
    """A key-normalised checkpoint fine-tuned in every key: the card will say tonic null."""
    folder, csv_path = labelled_folder
    argv = tiny_args(folder, csv_path, tmp_path, 2)
    assert train.main(argv + ["--key-normalise", "true", "--transpose", "0"]) == 0
    capsys.readouterr()
    assert train.main(argv + ["--init-from", str(tmp_path / "run" / "ckpt.pt"),
                              "--out", str(tmp_path / "tuned")]) == 0
    err = capsys.readouterr().err
    assert "was trained with key_normalise true, this run with false" in err
    assert "tonic null (to keep every clip in C: --key-normalise true --transpose 0)" in err
    assert train.main(argv[:-4] + ["--init-from", str(tmp_path / "nope.pt"),
                                   "--out", str(tmp_path / "other")]) == 2
    assert "nope.pt not found" in capsys.readouterr().err


def test_init_from_accepts_a_checkpoint_written_before_final_states(labelled_folder,
                                                                    tmp_path: Path) -> None:
    folder, csv_path = labelled_folder
    assert train.main(tiny_args(folder, csv_path, tmp_path, 2) + ["--final-states", "false"]) == 0
    old = tmp_path / "old.pt"
    ckpt = torch.load(tmp_path / "run" / "ckpt.pt", weights_only=False)
    del ckpt["model_args"]["final_states"]  # as checkpoints were before the field existed
    torch.save(ckpt, old)
    argv = tiny_args(folder, csv_path, tmp_path, 1) + [
        "--final-states", "false", "--init-from", str(old), "--out", str(tmp_path / "tuned")]
    assert train.main(argv) == 0


def test_a_refused_resume_names_every_setting_that_may_change() -> None:
    """The message listed six of them, leaving out --generic-folder and --generic-csv."""
    from emolive.training.checkpoints import resumed_config

    with pytest.raises(ValueError) as info:
        resumed_config({"hidden": 16}, {"hidden": 32})
    assert "hidden 16 -> 32" in str(info.value)
    assert "cache_dir, generic_folder, generic_csv may change" in str(info.value)
