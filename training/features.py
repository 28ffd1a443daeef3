"""Notes -> 16th-note grid -> piano roll (and back to MIDI for listening).

Grid (one step = one 16th note, 4 steps per beat):
- ``"beats"``: the file's own beats (ticks / ticks_per_beat); exact for quantised files
  whatever their tempo map.
- ``"tracked"``: beats found in the performance by dynamic-programming beat tracking over the
  note onsets (Ellis 2007), each beat split into four steps. For EMOPIA, whose files carry no
  beat information (one nominal 120 BPM tempo, performed timing): see docs/training.md.
- ``"auto"``: the file's own beats where its onsets sit on them, else tracked beats (POP909:
  performed to audio in files with one fixed tempo).

Roll frame per step, uint8 on disk: ``[onset(88) | hold(88) | velocity(88)]``, velocity as the
MIDI value 0..127 at onset steps; :func:`to_float` gives the model's float32 layout (velocity/127).
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np

from .notes import Notes

N_KEYS = 88
LOW_PITCH = 21  # key index k = pitch - 21
STEPS_PER_BEAT = 4
FRAME_RATE = 100.0  # onset-envelope frames per second for beat tracking (10 ms)


def _onset_envelope(onset_s: np.ndarray, weight: np.ndarray) -> np.ndarray:
    frames = int(onset_s.max() * FRAME_RATE) + int(2 * FRAME_RATE)
    env = np.zeros(frames)
    np.add.at(env, (onset_s * FRAME_RATE).astype(int), weight)
    kernel = np.exp(-0.5 * (np.arange(-5, 6) / 2.0) ** 2)  # ~20 ms Gaussian smoothing
    env = np.convolve(env, kernel, mode="same")
    return env / (env.std() + 1e-9)


def track_beats(onset_s: np.ndarray, weight: np.ndarray, tightness: float = 100.0,
                prior_bpm: float = 110.0) -> np.ndarray:
    """Beat times in seconds (increasing) for a performance, from its note onsets.

    Global period: autocorrelation of the onset envelope weighted by a log-normal tempo prior
    (50..180 BPM); then the beat sequence maximising onset strength minus
    ``tightness * log(interval / period)^2`` (Ellis 2007, dynamic programming).
    """
    env = _onset_envelope(onset_s, weight)
    bpms = np.arange(50, 181)
    lags = (60.0 * FRAME_RATE / bpms).astype(int)
    lags = lags[lags < len(env) - 1]
    if len(lags) == 0:
        return np.array([0.0, 0.5])
    autocorr = np.array([np.dot(env[:-lag], env[lag:]) for lag in lags])
    prior = np.exp(-0.5 * (np.log2(60.0 * FRAME_RATE / lags / prior_bpm) / 0.9) ** 2)
    period = int(lags[np.argmax(autocorr * prior)])
    offsets = np.arange(-2 * period, -(period // 2))  # predecessor search window, frames
    penalty = -tightness * np.log(-offsets / period) ** 2
    score, back = env.copy(), np.full(len(env), -1)
    for frame in range(period // 2, len(env)):
        cand = frame + offsets
        ok = cand >= 0
        if not ok.any():
            continue
        values = score[cand[ok]] + penalty[ok]
        best = int(np.argmax(values))
        score[frame] += values[best]
        back[frame] = cand[ok][best]
    tail = max(0, len(env) - 2 * period)
    beats = [tail + int(np.argmax(score[tail:]))]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    times = np.array(beats[::-1], dtype=np.float64) / FRAME_RATE
    if len(times) < 2:
        times = np.array([times[0], times[0] + period / FRAME_RATE])
    return times


def _seconds_to_beats(t: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Piecewise-linear time -> beat index, extrapolated with the first/last interval."""
    pos = np.interp(t, beats, np.arange(len(beats), dtype=np.float64))
    first, last = beats[1] - beats[0], beats[-1] - beats[-2]
    pos = np.where(t < beats[0], (t - beats[0]) / first, pos)
    return np.where(t > beats[-1], len(beats) - 1 + (t - beats[-1]) / last, pos)


#: "auto" keeps a file's own beats when its onsets sit this close to 16ths on average (steps);
#: quantised files sit at 0, POP909's performances at about 0.3 (48 ms at its tempi).
AUTO_MAX_MEAN_OFFSET_STEPS = 0.1


def note_steps(notes: Notes, grid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end of each note in (fractional) steps, and each onset's step length in s."""
    if grid == "auto":
        start, end, step_s = note_steps(notes, "beats")
        offset = np.abs(start - np.round(start))  # steps from the nearest 16th
        off_grid = len(start) > 0 and offset.mean() > AUTO_MAX_MEAN_OFFSET_STEPS
        return note_steps(notes, "tracked") if off_grid else (start, end, step_s)
    if grid == "beats":
        return (notes.start_beat * STEPS_PER_BEAT, notes.end_beat * STEPS_PER_BEAT,
                notes.beat_s / STEPS_PER_BEAT)
    if grid == "tracked":
        beats = track_beats(notes.start_s, notes.velocity / 127.0)
        start = _seconds_to_beats(notes.start_s, beats)
        end = _seconds_to_beats(notes.end_s, beats)
        beat_len = np.interp(notes.start_s, beats[:-1], np.diff(beats))
        origin = np.floor(start.min())  # the beat holding the first onset is beat 0
        return ((start - origin) * STEPS_PER_BEAT, (end - origin) * STEPS_PER_BEAT,
                beat_len / STEPS_PER_BEAT)
    raise ValueError(f"unknown grid {grid!r}; use 'beats', 'tracked' or 'auto'")


def onset_error_s(start_steps: np.ndarray, step_s: np.ndarray) -> np.ndarray:
    """How far (seconds) snapping each onset to the nearest step moves it."""
    return np.abs(start_steps - np.round(start_steps)) * step_s


def notes_to_roll(pitch: np.ndarray, velocity: np.ndarray, start_steps: np.ndarray,
                  end_steps: np.ndarray) -> np.ndarray:
    """uint8 roll ``[T, 264]``; notes outside MIDI 21..108 are dropped. A note lasts at least one
    step; two onsets of one key on one step merge (louder velocity wins)."""
    start = np.round(start_steps).astype(np.int64)
    end = np.maximum(np.round(end_steps).astype(np.int64), start + 1)
    keep = (pitch >= LOW_PITCH) & (pitch < LOW_PITCH + N_KEYS) & (start >= 0)
    start, end, key, vel = start[keep], end[keep], pitch[keep] - LOW_PITCH, velocity[keep]
    steps = int(end.max()) if len(end) else 0
    roll = np.zeros((steps, 3 * N_KEYS), dtype=np.uint8)
    for s, e, k, v in zip(start, end, key, vel):
        roll[s, k] = 1
        roll[s:e, N_KEYS + k] = 1
        roll[s, 2 * N_KEYS + k] = max(roll[s, 2 * N_KEYS + k], int(np.clip(v, 1, 127)))
    return roll


def to_float(roll: np.ndarray) -> np.ndarray:
    """uint8 roll -> the model's float32 frame layout (velocity / 127)."""
    out = roll.astype(np.float32)
    out[..., 2 * N_KEYS:] /= 127.0
    return out


def transpose_roll(roll: np.ndarray, semitones: int) -> np.ndarray:
    """Shift every block by ``semitones`` keys; notes pushed off the keyboard are dropped."""
    out = np.zeros_like(roll)
    for block in range(3):
        src = roll[..., block * N_KEYS:(block + 1) * N_KEYS]
        dst = out[..., block * N_KEYS:(block + 1) * N_KEYS]
        if semitones >= 0:
            dst[..., semitones:] = src[..., :N_KEYS - semitones]
        else:
            dst[..., :semitones] = src[..., -semitones:]
    return out


def transpose_segments(rolls: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Transpose each segment of ``rolls [N, T, 264]`` by its own ``shifts[i]`` semitones."""
    out = np.empty_like(rolls)
    for i, semitones in enumerate(shifts):
        out[i] = transpose_roll(rolls[i], int(semitones))
    return out


def roll_notes(roll: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(pitch, velocity, start step, end step) of a roll (uint8 or float layout).

    A note starts at an onset and lasts while the key's hold stays on, up to the key's next
    onset; holds without an onset are ignored (no note starts without an onset)."""
    onset = roll[:, :N_KEYS] > 0.5
    hold = roll[:, N_KEYS:2 * N_KEYS] > 0.5
    vel = roll[:, 2 * N_KEYS:]
    scale = 127.0 if roll.dtype != np.uint8 else 1.0
    notes = []
    steps = len(roll)
    for step, key in zip(*np.nonzero(onset)):
        end = step + 1
        while end < steps and hold[end, key] and not onset[end, key]:
            end += 1
        velocity = int(np.clip(round(float(vel[step, key]) * scale), 1, 127))
        notes.append((int(key) + LOW_PITCH, velocity, int(step), int(end)))
    return sorted(notes, key=lambda n: (n[2], n[0]))


def roll_to_midi(roll: np.ndarray, path: str | Path | None = None, bpm: float = 120.0,
                 ticks_per_beat: int = 480, program: int = 0) -> mido.MidiFile:
    """A one-track MIDI file (channel 1) of a roll; written to ``path`` when given."""
    ticks_per_step = ticks_per_beat // STEPS_PER_BEAT
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order: offs first, message)
    for pitch, vel, start, end in roll_notes(roll):
        events.append((start * ticks_per_step, 1, mido.Message("note_on", note=pitch,
                                                               velocity=vel)))
        events.append((end * ticks_per_step, 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0),
                            mido.Message("program_change", program=program, time=0)])
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat, tracks=[track])
    if path is not None:
        midi.save(str(path))
    return midi
