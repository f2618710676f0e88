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
``batches``       a split opened for sampling; planned batches dealt to DataLoader workers
``logs``          the CSV logs (train, val, retrieval), TensorBoard scalars, stderr lines
``state``         the run's state: built fresh or resumed exactly, resumable and best checkpoints
``loop``          :func:`fit`: setup, epochs, updates, validation, checkpoints, the run's result
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
