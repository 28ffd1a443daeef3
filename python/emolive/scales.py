"""Keys and scales as sets of allowed pitch classes, for ``Engine.set_key``.

A scale mask is a 12-bit integer: bit ``c`` set means pitch class ``c`` (0 = C, 1 = C#/Db, ...,
11 = B) may start notes. The engine applies it to onsets only; notes already sounding end as
the model decides.

    >>> scale_mask("C", "major") == 0b101010110101
    True
"""

from __future__ import annotations

ALL_PITCH_CLASSES = 0x0FFF

#: Semitone offsets from the tonic.
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
_SCALE_ALIASES = {"ionian": "major", "aeolian": "minor", "natural_minor": "minor"}

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def known_scales() -> list[str]:
    """Every accepted scale name (aliases included)."""
    return sorted([*SCALES, *_SCALE_ALIASES])


def pitch_class(key: str) -> int:
    """``"C"`` -> 0, ``"F#"`` / ``"Gb"`` -> 6, ``"bb"`` -> 10 (case-insensitive; ``#``/``b``/``♯``/``♭``)."""
    if not isinstance(key, str):
        raise TypeError(f"a key is a note name such as 'C' or 'F#', not {type(key).__name__}")
    text = key.strip()
    if not text or text[0].upper() not in _LETTERS:
        raise ValueError(f"unknown key {key!r}; write a note name: C, C#, Db, D, ..., B")
    value = _LETTERS[text[0].upper()]
    for accidental in text[1:]:
        if accidental in "#♯":
            value += 1
        elif accidental in "b♭":
            value -= 1
        else:
            raise ValueError(f"unknown key {key!r}; write a note name: C, C#, Db, D, ..., B")
    return value % 12


def _scale_name(scale: str) -> str:
    """A scale as SCALES names it: any case, spaces or hyphens for underscores, aliases resolved."""
    name = scale.strip().lower().replace(" ", "_").replace("-", "_")
    return _SCALE_ALIASES.get(name, name)


def scale_mask(key: str | None, scale: str = "major") -> int:
    """The 12-bit mask of pitch classes in ``scale`` on ``key``; every class when key is None."""
    if not isinstance(scale, str):
        raise TypeError(f"a scale is a name such as 'major', not {type(scale).__name__}")
    name = _scale_name(scale)
    if name not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known scales: {', '.join(known_scales())}")
    if key is None:
        return ALL_PITCH_CLASSES
    tonic = pitch_class(key)
    mask = 0
    for offset in SCALES[name]:
        mask |= 1 << ((tonic + offset) % 12)
    return mask


def transposition(key: str | None, model_tonic: int | None) -> int:
    """Semitones (-5..6) that move a model trained in ``model_tonic`` (a pitch class, from its
    card; None: trained in every key) to ``key``; 0 when either is None.

    >>> transposition("A", 0), transposition("G", 0), transposition("A", None)
    (-3, -5, 0)
    """
    if key is None or model_tonic is None:
        return 0
    return nearer_shift(pitch_class(key) - model_tonic)


def nearer_shift(semitones: int) -> int:
    """The shift in -5..6 that reaches the same pitch class as ``semitones`` (the nearer way,
    so music moved by it keeps its register): 7 -> -5, -7 -> 5, 6 -> 6."""
    up = semitones % 12
    return up if up <= 6 else up - 12


#: Key signatures as MIDI files name them (mido's names), by sharps (+) or flats (-).
_MAJOR_SIGNATURES = {"Cb": -7, "Gb": -6, "Db": -5, "Ab": -4, "Eb": -3, "Bb": -2, "F": -1, "C": 0,
                     "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7}
#: A scale's key signature: (major or minor, semitones from the scale's tonic to that key's
#: tonic). The modes are written in their parent major's signature (D dorian as C major), as
#: notation programs write them; chromatic has none.
_SIGNATURE_OF_SCALE = {"major": ("major", 0), "major_pentatonic": ("major", 0), "minor": ("minor", 0),
                       "harmonic_minor": ("minor", 0), "melodic_minor": ("minor", 0),
                       "minor_pentatonic": ("minor", 0), "blues": ("minor", 0), "dorian": ("major", -2),
                       "phrygian": ("major", -4), "lydian": ("major", -5), "mixolydian": ("major", -7),
                       "locrian": ("major", -11)}


def key_signature(key: str, scale: str) -> str | None:
    """The MIDI key signature of ``scale`` on ``key``, as mido names it ("F#m", "Gb", "C"),
    spelled as ``key`` is where a signature of that name exists (a key of more than 7 sharps
    or flats takes its enharmonic: "A#" major is written "Bb"); None for a scale without one
    (chromatic). The scale name and key as :func:`scale_mask` takes them.

    >>> key_signature("F#", "minor"), key_signature("Gb", "major"), key_signature("D", "dorian")
    ('F#m', 'Gb', 'C')
    """
    name = _scale_name(scale)
    if name not in _SIGNATURE_OF_SCALE:
        return None
    mode, shift = _SIGNATURE_OF_SCALE[name]
    suffix = "m" if mode == "minor" else ""
    tonic = (pitch_class(key) + shift) % 12
    major_tonic = (tonic + 3) % 12 if mode == "minor" else tonic  # a minor key's relative major
    candidates = [n for n in _MAJOR_SIGNATURES if pitch_class(n) == major_tonic]  # 1, or 2 enharmonics
    spelled = key.strip()[:1].upper() + key.strip()[1:].replace("\u266f", "#").replace("\u266d", "b")
    for major in candidates:  # the key as written, where a signature of that name exists
        if shift == 0 and _tonic_name(major, mode) == spelled:
            return spelled + suffix
    wants_flats, wants_sharps = "b" in spelled[1:], "#" in spelled[1:]

    def unlike_the_key(major: str) -> bool:  # the other accidental than the key was written with
        return (wants_flats and "#" in major) or (wants_sharps and "b" in major[1:])

    major = min(candidates, key=lambda n: (unlike_the_key(n), abs(_MAJOR_SIGNATURES[n])))
    return _tonic_name(major, mode) + suffix


def _tonic_name(major: str, mode: str) -> str:
    """The tonic's name of the key with ``major``'s signature in ``mode`` (its relative minor
    three semitones down, spelled with the signature's accidentals)."""
    if mode == "major":
        return major
    return {"Cb": "Ab", "Gb": "Eb", "Db": "Bb", "Ab": "F", "Eb": "C", "Bb": "G", "F": "D", "C": "A",
            "G": "E", "D": "B", "A": "F#", "E": "C#", "B": "G#", "F#": "D#", "C#": "A#"}[major]
