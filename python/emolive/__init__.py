"""emolive: emotion-conditioned live MIDI generation."""

from emolive.emotions import known_emotions, parse_emotion

__all__ = ["known_emotions", "parse_emotion"]
__version__ = "0.1.0"
