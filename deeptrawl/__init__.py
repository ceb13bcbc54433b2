"""deeptrawl: trawl media archives for deepfakes and AI-generated or manipulated media."""

__version__ = "0.1.0"
