"""The rehearsal: any grid's paper profile run unchanged except for size, on tiny random checkpoints saved under
the real hub ids (loaded through the real Hugging Face / timm paths) and an Arrow root written by the converters
from tiny raw fixtures. ``prepare`` builds both; ``spec.rehearse`` is the one place that says what changes."""
