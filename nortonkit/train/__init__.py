"""Pre-training on HowTo100M-format data (the lab): ``python -m nortonkit.train --config <yaml>``.

================  ===========================================================================
module            holds
================  ===========================================================================
``config``        the run's configuration: frozen dataclasses, YAML, strict key and range checks
``presets``       the paper's and the official code's loss presets (``LOSS_PRESETS``, T7 A-J)
``schedule``      warm-up + polynomial-decay learning rate, Adam over the trainable parameters
``objective``     Norton Eq. 1: ``L_clip`` (Eq. 7-8) + ``L_video`` (Eq. 4, 6), one update
``retrieval``     hard-negative batches from clustered video embeddings, per epoch
``distributed``   torchrun / DDP helpers (global negatives, object gathers)
``loop``          :func:`fit`: data, validation, logs, atomic checkpoints, exact resumption
``cli``           the command line
================  ===========================================================================
"""

from .cli import main
from .loop import FitResult, evaluate_model, fit, prepare_synthetic_corpus
from .objective import (
    LossTerms,
    NortonObjective,
    clip_retrieval_r1,
    clip_term,
    loss_terms,
    train_step,
    video_similarity,
    video_term,
    wrap_ddp,
)
from .schedule import PolynomialDecaySchedule, build_optimizer, polynomial_decay_lr

__all__ = [
    "FitResult", "evaluate_model", "fit", "prepare_synthetic_corpus", "LossTerms",
    "NortonObjective", "clip_retrieval_r1", "clip_term", "loss_terms", "train_step",
    "video_similarity", "video_term", "wrap_ddp", "PolynomialDecaySchedule", "build_optimizer",
    "polynomial_decay_lr", "main",
]
