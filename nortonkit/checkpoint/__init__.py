"""Checkpoints: strict loading of released fairseq files and nortonkit's own format.

Released VideoCLIP / Norton files
    :func:`load_fairseq_checkpoint` reads a fairseq ``.pt`` (weights under ``model``, or
    ``state_dict``, or a bare state dict; keys prefixed ``mmmodel.``; often float16) into a
    :class:`~nortonkit.encoders.DualEncoder`. The load is strict: every missing or unexpected
    key is an error listing them, except the whitelisted keys below, and every shape mismatch
    is an error naming key, expected and actual shape. Weights are cast to float32.

    * :data:`LEGACY_KEYS`: the two ``position_ids`` buffers written by transformers < 4.31,
      dropped on load.
    * :data:`~nortonkit.encoders.KIT_ONLY_KEYS`: the model's own temperatures and
      attention-pooling queries, absent from fairseq files; they keep their initial value
      (``log(1 / 0.07)``; zero queries, which pool by the mean).

    Unpickling never executes code. Files are first read with ``torch.load(weights_only=True)``
    plus ``argparse.Namespace`` (VideoCLIP's ``args``). Files whose *metadata* holds classes
    outside that allow-list (fairseq ``cfg`` saved as OmegaConf containers, fairseq enums) are
    re-read by a restricted unpickler that admits the tensor-rebuild functions and the
    allow-list of :mod:`nortonkit.io` (builtin containers, numpy arrays), and replaces classes
    from :data:`METADATA_PLACEHOLDER_MODULES` with inert placeholders (they store their
    arguments and never run code). Any other global (``os.system``, ``builtins.eval``, ...) is
    refused, and a placeholder found among the weights is refused too.

nortonkit's own format (a directory)
    ``model.safetensors`` (weights), ``config.json`` (format marker, the resolved
    :class:`~nortonkit.encoders.EncoderConfig`, the weights' sha256, free metadata) and, when
    there is training state, ``train_state.pt`` (optimizer, scheduler, RNG states, the loop's
    ``extra_state``; read back with ``weights_only=True``). :func:`save_checkpoint` writes
    every file into ``.<name>.*.tmp/`` (each file temp-then-rename) and commits the directory
    with one ``os.replace`` at the end, so a killed process leaves the previous checkpoint or
    the new one, never a mix.

==============  ===============================================================================
module          contents
==============  ===============================================================================
``fairseq``     :func:`load_fairseq_checkpoint`, :func:`fairseq_state_dict`,
                :func:`infer_config`, :class:`FairseqCheckpoint`, :data:`LEGACY_KEYS`
``torch_file``  :func:`read_torch_file` (restricted unpickling), metadata placeholders
``state_dict``  :func:`load_state_dict_strict` (key and shape checks shared by both formats)
``native``      :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`restore_train_state`,
                :func:`read_checkpoint_metadata`, :func:`checkpoint_hash`,
                :class:`LoadedCheckpoint`
``rng``         :func:`capture_rng_state`, :func:`restore_rng_state`
``any_format``  :func:`load_any_checkpoint` (either kind, by path)
==============  ===============================================================================
"""

from __future__ import annotations

from .any_format import load_any_checkpoint
from .fairseq import (
    FAIRSEQ_PREFIX,
    LEGACY_KEYS,
    FairseqCheckpoint,
    fairseq_state_dict,
    infer_config,
    load_fairseq_checkpoint,
)
from .native import (
    CHECKPOINT_FORMAT,
    LoadedCheckpoint,
    checkpoint_hash,
    load_checkpoint,
    read_checkpoint_metadata,
    restore_train_state,
    save_checkpoint,
)
from .rng import capture_rng_state, restore_rng_state
from .state_dict import load_state_dict_strict
from .torch_file import METADATA_PLACEHOLDER_MODULES, read_torch_file

__all__ = [
    "FAIRSEQ_PREFIX",
    "LEGACY_KEYS",
    "METADATA_PLACEHOLDER_MODULES",
    "CHECKPOINT_FORMAT",
    "FairseqCheckpoint",
    "LoadedCheckpoint",
    "read_torch_file",
    "fairseq_state_dict",
    "infer_config",
    "load_state_dict_strict",
    "load_fairseq_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "checkpoint_hash",
    "capture_rng_state",
    "restore_rng_state",
    "restore_train_state",
    "load_any_checkpoint",
]
