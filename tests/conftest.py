"""Shared fixtures: seeded generators, dtype tolerances, headless matplotlib, private HOME."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch

from nortonkit.synthetic.config import SyntheticConfig

matplotlib.use("Agg")

# Tolerances per dtype (HOUSE_STYLE R17).
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
}
# Iterative solvers stopped after a fixed number of iterations agree to this.
TOL_ITERATIVE = dict(rtol=1e-6, atol=1e-6)
# Finite-difference gradient checks (float64, small inputs).
TOL_FINITE_DIFF = dict(rtol=1e-2, atol=1e-2)


def tiny_corpus_config(seed: int = 0, **overrides) -> SyntheticConfig:
    """A corpus of a few videos per dataset (about a second to generate)."""
    kw = dict(how2_train=6, how2_val=2, how2_shard_size=4, youcook_val=5, youcook_train=1,
              msrvtt_test=5, msrvtt_train=2, msrvtt_captions=2, coin_videos=8, coin_tasks=2,
              htm_align_videos=2)
    kw.update(overrides)
    return SyntheticConfig.preset("smoke", seed=seed, **kw)


@pytest.fixture
def generator() -> torch.Generator:
    """A seeded CPU generator; pass it explicitly to every random draw."""
    return torch.Generator().manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory):
    """Point HOME and the Jupyter/matplotlib config dirs at a temporary folder."""
    home = tmp_path_factory.mktemp("home")
    old = {k: os.environ.get(k) for k in ("HOME", "MPLCONFIGDIR", "IPYTHONDIR")}
    os.environ["MPLCONFIGDIR"] = str(home / "mpl")
    os.environ["IPYTHONDIR"] = str(home / "ipython")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
