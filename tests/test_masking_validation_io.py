"""Tests for the shared helpers: nortonkit.masking, nortonkit.validation and nortonkit.io."""

from __future__ import annotations

import argparse
import collections
import os
import pickle

import numpy as np
import pytest
import torch
from conftest import TOL

from nortonkit.io import (
    UnsafePickleError,
    atomic_save_npy,
    atomic_write,
    numpy_pickle_global,
    safe_pickle_load,
    safe_pickle_loads,
    safe_torch_load,
)
from nortonkit.masking import lengths_to_mask, masked_logsumexp, masked_mean, pad_sequences
from nortonkit.validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_mask,
    check_nonempty_mask,
    check_open_unit,
    check_positive,
    check_tensor,
)

F64 = torch.float64

# --------------------------------------------------------------------------------------------
# masking
# --------------------------------------------------------------------------------------------


def test_masked_logsumexp_equals_logsumexp_of_valid_entries(generator):
    x = torch.randn(4, 6, generator=generator, dtype=F64)
    mask = torch.rand(4, 6, generator=generator) > 0.4
    mask[:, 0] = True
    garbage = x.masked_fill(~mask, float("nan"))
    got = masked_logsumexp(garbage, mask, dim=-1)
    want = torch.stack([torch.logsumexp(x[i][mask[i]], 0) for i in range(4)])
    torch.testing.assert_close(got, want, **TOL[F64])
    keep = masked_logsumexp(garbage, mask, dim=-1, keepdim=True)
    assert keep.shape == (4, 1)
    torch.testing.assert_close(keep[:, 0], want, **TOL[F64])
    # dim=0 and a broadcast mask (4, 1) -> (4, 6)
    col = mask[:, :1] | True
    torch.testing.assert_close(masked_logsumexp(x, col, dim=0), torch.logsumexp(x, 0), **TOL[F64])
    torch.testing.assert_close(masked_logsumexp(x, None, dim=1), torch.logsumexp(x, 1))


def test_masked_logsumexp_is_stable_for_large_values():
    x = torch.tensor([[1000.0, 1000.0, -1000.0]], dtype=F64)
    got = masked_logsumexp(x, torch.tensor([[True, True, True]]), dim=-1)
    torch.testing.assert_close(got, torch.tensor([1000.0 + np.log(2.0)], dtype=F64))


def test_masked_logsumexp_fully_masked_slice_forward_and_gradient():
    x = torch.tensor([[0.5, float("nan"), 2.0], [1.0, 2.0, 3.0]], dtype=F64, requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out = masked_logsumexp(x, mask, dim=-1)
    assert float(out[1].detach()) == -float("inf")
    out[0].backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[1] == 0).all() and float(x.grad[0, 1]) == 0.0
    torch.testing.assert_close(x.grad[0, [0, 2]].sum(), torch.tensor(1.0, dtype=F64))
    # A loss that uses the -inf only through a where() still back-propagates finite zeros.
    x.grad = None
    out = masked_logsumexp(x, mask, dim=-1)
    torch.where(torch.isfinite(out), out, 0.0).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[1] == 0).all()


def test_masked_mean():
    x = torch.tensor([[1.0, 3.0, float("nan")], [2.0, 4.0, 6.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(masked_mean(x, mask, -1), torch.tensor([2.0, 4.0]))
    assert masked_mean(x, mask, -1, keepdim=True).shape == (2, 1)
    # A fully masked slice gives 0 (no NaN), never a division by zero.
    empty = torch.tensor([[False, False, False], [True, False, False]])
    torch.testing.assert_close(masked_mean(x, empty, -1), torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(masked_mean(x[1:], None, -1), torch.tensor([4.0]))


def test_lengths_to_mask():
    got = lengths_to_mask(torch.tensor([2, 0, 3]))
    want = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(got, want)
    assert lengths_to_mask(torch.tensor([1, 2]), max_len=4).shape == (2, 4)
    assert lengths_to_mask([3]).tolist() == [[True, True, True]]
    assert lengths_to_mask(torch.zeros(0, dtype=torch.long)).shape == (0, 0)


def test_lengths_to_mask_errors():
    with pytest.raises(ValueError, match=r"lengths: expected shape \(B,\), got \(2, 2\)"):
        lengths_to_mask(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lengths: expected non-negative lengths, got \[1, -1\]"):
        lengths_to_mask(torch.tensor([1, -1]))
    with pytest.raises(ValueError, match=r"lengths: expected an integer tensor, got dtype"):
        lengths_to_mask(torch.tensor([1.5, 2.0]))
    with pytest.raises(ValueError, match=r"max_len: expected an integer >= the longest length 3"):
        lengths_to_mask(torch.tensor([1, 3]), max_len=2)
    with pytest.raises(ValueError, match=r"max_len: expected an integer"):
        lengths_to_mask(torch.tensor([1, 3]), max_len=4.0)


def test_pad_sequences(generator):
    seqs = [torch.randn(n, 2, generator=generator) for n in (2, 4, 1)]
    x, mask = pad_sequences(seqs, value=-7.0)
    assert x.shape == (3, 4, 2) and mask.shape == (3, 4)
    assert mask.sum(1).tolist() == [2, 4, 1]
    for i, s in enumerate(seqs):
        torch.testing.assert_close(x[i, : len(s)], s)
        assert (x[i, len(s) :] == -7.0).all()
    x, mask = pad_sequences([torch.arange(3), torch.arange(1)])
    assert x.dtype == torch.int64 and x.tolist() == [[0, 1, 2], [0, 0, 0]]
    # Zero-length sequences are allowed; they give an all-False mask row.
    x, mask = pad_sequences([torch.ones(0, 3), torch.ones(2, 3)])
    assert mask.tolist() == [[False, False], [True, True]] and x.shape == (2, 2, 3)


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match=r"seqs: expected at least one tensor, got an empty list"):
        pad_sequences([])
    with pytest.raises(ValueError, match=r"seqs\[1\]: expected trailing shape \(2,\)"):
        pad_sequences([torch.ones(2, 2), torch.ones(3, 3)])
    with pytest.raises(ValueError, match=r"seqs\[1\]: expected trailing shape .* and dtype"):
        pad_sequences([torch.ones(2), torch.ones(3, dtype=torch.int64)])
    shape = r"expected a tensor of shape \(L, \*\)"
    with pytest.raises(ValueError, match=rf"seqs\[0\]: {shape}, got \(\)"):
        pad_sequences([torch.tensor(1.0)])
    with pytest.raises(ValueError, match=rf"seqs\[1\]: {shape}, got list"):
        pad_sequences([torch.ones(2), [1.0, 2.0]])


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def test_check_tensor():
    x = torch.zeros(2, 3, 4)
    assert check_tensor("scores", x, min_ndim=2, shape=(None, 4)) is x
    assert check_tensor("ids", torch.zeros(3, dtype=torch.long), floating=False, ndim=1) is not None
    cases = [
        (dict(x=np.zeros(3)), r"scores: expected a torch.Tensor, got ndarray"),
        (dict(x=x, ndim=2), r"scores: expected 2 dims, got shape \(2, 3, 4\)"),
        (dict(x=torch.zeros(3), min_ndim=2), r"scores: expected a tensor with at least 2 dims"),
        (dict(x=torch.zeros(3, dtype=torch.int32)), r"scores: expected a floating-point tensor"),
        (dict(x=x, shape=(5, None)), r"scores: expected trailing shape \(5, '\*'\), got \(2, 3"),
        (dict(x=torch.zeros(4), shape=(3, 4)), r"scores: expected trailing shape \(3, 4\)"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            check_tensor("scores", **kwargs)


def test_check_mask_and_nonempty():
    assert check_mask("row_mask", None, (2, 3)) is None
    with pytest.raises(ValueError, match=r"row_mask: expected dtype torch.bool \(True = valid\)"):
        check_mask("row_mask", torch.ones(2, 3, dtype=torch.uint8), (2, 3))
    with pytest.raises(ValueError, match=r"row_mask: expected shape \(2, 3\), got \(3, 2\)"):
        check_mask("row_mask", torch.ones(3, 2, dtype=torch.bool), (2, 3))
    with pytest.raises(ValueError, match=r"row_mask: expected a bool tensor, got list"):
        check_mask("row_mask", [True], (1,))
    check_nonempty_mask("col_mask", torch.tensor([[True, False]]), "columns")
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False
    with pytest.raises(ValueError, match=r"col_mask: problem\(s\) \[\(1, 2\)\] have no valid"):
        check_nonempty_mask("col_mask", mask, "columns")


def test_check_finite():
    check_finite("x", torch.tensor([1.0, float("nan")]), torch.tensor([True, False]))
    with pytest.raises(
        ValueError,
        match=r"x: expected finite values, found 2 NaN/inf entries "
        r"\(first at index \(0, 1\)\)",
    ):
        check_finite("x", torch.tensor([[0.0, float("inf")], [-float("inf"), 1.0]]))


def test_scalar_checks():
    assert check_positive("eps", 0.5) == 0.5
    assert check_positive("eps", np.float32(2.0)) == 2.0
    for bad in (0, -1.0, float("nan"), float("inf"), "0.1", None, True, [1.0]):
        with pytest.raises(ValueError, match=r"eps: expected a finite number > 0"):
            check_positive("eps", bad)
    assert check_int_at_least("n_iters", 5, 1) == 5
    for bad in (0, -3, 2.5, "3", True, None):
        with pytest.raises(ValueError, match=r"n_iters: expected an integer >= 1"):
            check_int_at_least("n_iters", bad, 1)
    assert check_open_unit("quantile", 0.3) == 0.3
    for bad in (0.0, 1.0, -0.5, 2, float("nan"), "0.3", True, None):
        with pytest.raises(ValueError, match=r"quantile: expected a number in"):
            check_open_unit("quantile", bad)
    check_choice("grad", "unroll", ("detach", "unroll"))
    with pytest.raises(ValueError, match=r"grad: expected one of \('detach', 'unroll'\), got 'x'"):
        check_choice("grad", "x", ("detach", "unroll"))


# --------------------------------------------------------------------------------------------
# io: atomic writes
# --------------------------------------------------------------------------------------------


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_success(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as f:
        f.write(b"abc")
        assert not target.exists()  # nothing under the final name before the body ends
    assert target.read_bytes() == b"abc"
    assert _leftovers(target.parent) == ["out.bin"]
    with atomic_write(target, "w") as f:
        f.write("replaced")
    assert target.read_text() == "replaced"
    assert _leftovers(target.parent) == ["out.bin"]


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert _leftovers(tmp_path) == []
    # An existing file survives a failed rewrite untouched.
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, "w") as f:
            f.write("new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == ["out.txt"]


def test_atomic_save_npy(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic_save_npy(tmp_path / "a.npy", arr)
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), arr)
    with pytest.raises(ValueError):
        atomic_save_npy(tmp_path / "b.npy", np.array([object()], dtype=object))
    assert _leftovers(tmp_path) == ["a.npy"]


# --------------------------------------------------------------------------------------------
# io: restricted unpickling
# --------------------------------------------------------------------------------------------


class Custom:
    def __init__(self, x=1):
        self.x = x


class Exploit:
    """Pickles to ``func(*args)``, the usual way a pickle runs code on load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _global_call(module: str, name: str, *args) -> bytes:
    """A protocol-0 pickle that calls ``module.name(*args)``; the callable need not exist here."""
    body = b"".join(b"V" + str(a).encode() + b"\n" for a in args)
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n(" + body + b"tR."


@pytest.mark.parametrize(
    "payload,refused",
    [
        (pickle.dumps(os.system), "system"),
        (pickle.dumps(Exploit(os.system, "true")), "system"),
        (pickle.dumps(Exploit(eval, "1 + 1")), "builtins.eval"),
        (_global_call("builtins", "getattr", "os", "system"), "builtins.getattr"),
        (_global_call("posix", "system", "true"), "posix.system"),
        (_global_call("subprocess", "check_output", "ls"), "subprocess.check_output"),
        (pickle.dumps(Custom()), "Custom"),
        (pickle.dumps([1, {"a": Custom()}]), "Custom"),
        (pickle.dumps(Exploit(np.load, "x.npy", None, True)), "numpy.load"),
        (pickle.dumps(Exploit(np.frombuffer, b"\x00" * 8)), "numpy.frombuffer"),
        (_global_call("numpy.testing._private.utils", "runstring", "x = 1", "{}"), "runstring"),
        (_global_call("numpy", "fromfile", "/etc/passwd"), "numpy.fromfile"),
        (_global_call("numpy.lib.npyio", "load", "evil.npy"), "numpy.lib.npyio.load"),
        (_global_call("numpyevil", "EvilDType"), "numpyevil.EvilDType"),
        (_global_call("numpy.testing", "FakeDType"), "numpy.testing.FakeDType"),
        (_global_call("numpy.dtypes", "StringDTypeFake"), "numpy.dtypes.StringDTypeFake"),
        (pickle.dumps(np.array([Custom()], dtype=object)), "Custom"),
    ],
)
def test_safe_pickle_refuses_code(payload, refused):
    match = rf"<bytes>: refusing to unpickle global .*{refused}"
    with pytest.raises(UnsafePickleError, match=match):
        safe_pickle_loads(payload)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_safe_pickle_accepts_data(protocol):
    arrays = [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(6).reshape(2, 3).T,  # non-contiguous
        np.array([1 + 2j, 3j]),
        np.array([True, False]),
        np.array(["ab", "c"]),
        np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", ">f8")]),
        np.array(np.datetime64("2020-01-01")),
        np.zeros((0, 4), dtype=np.int16),
        np.float64(1.5),
        np.int8(-3),
    ]
    obj = {
        "arrays": arrays,
        "nested": [1, 2.0, "x", b"y", None, (1, 2), {3, 4}, frozenset({5})],
        "ordered": collections.OrderedDict(a=1),
        "range": range(3),
        "plain_object_array": np.array([1, "a"], dtype=object),
    }
    got = safe_pickle_loads(pickle.dumps(obj, protocol=protocol))
    assert got["nested"] == obj["nested"] and got["ordered"] == obj["ordered"]
    assert got["range"] == range(3)
    for a, b in zip(got["arrays"], arrays):
        assert type(a) is type(b) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert got["plain_object_array"].tolist() == [1, "a"]


def test_safe_pickle_truncated_or_corrupt_names_the_source(tmp_path):
    data = pickle.dumps({"x": np.arange(100)})
    with pytest.raises(ValueError, match=r"shard_3\.pkl: not a readable pickle \(truncated"):
        safe_pickle_loads(data[: len(data) // 2], source="shard_3.pkl")
    with pytest.raises(ValueError, match=r"<bytes>: not a readable pickle"):
        safe_pickle_loads(b"")
    with pytest.raises(ValueError, match=r"<bytes>: not a readable pickle"):
        safe_pickle_loads(b"\x80\x04garbage-not-a-pickle")
    path = tmp_path / "meta.pkl"
    path.write_bytes(data[:-5])
    with pytest.raises(ValueError, match=rf"{path}: not a readable pickle"):
        safe_pickle_load(path)
    path.write_bytes(pickle.dumps(Custom()))
    with pytest.raises(UnsafePickleError, match=rf"{path}: refusing to unpickle global"):
        safe_pickle_load(path)
    path.write_bytes(data)
    np.testing.assert_array_equal(safe_pickle_load(path)["x"], np.arange(100))
    with pytest.raises(FileNotFoundError, match="missing.pkl: pickle file not found"):
        safe_pickle_load(tmp_path / "missing.pkl")


# --------------------------------------------------------------------------------------------
# io: torch checkpoints
# --------------------------------------------------------------------------------------------


def test_safe_torch_load(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "step": 3}
    torch.save(state, tmp_path / "ok.pt")
    got = safe_torch_load(tmp_path / "ok.pt")
    assert got["step"] == 3 and torch.equal(got["model"]["w"], torch.arange(4.0))

    foreign = tmp_path / "foreign.pt"
    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.ones(2)}, foreign)
    with pytest.raises(
        ValueError,
        match=rf"{foreign}: refused by the weights-only loader.*"
        r"argparse\.Namespace",
    ):
        safe_torch_load(foreign)
    assert safe_torch_load(foreign, extra_globals=[argparse.Namespace])["args"].lr == 0.1

    custom = tmp_path / "custom.pt"
    torch.save({"obj": Custom(2)}, custom)
    with pytest.raises(ValueError, match=r"refused by the weights-only loader.*Custom"):
        safe_torch_load(custom)

    data = (tmp_path / "ok.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{truncated}: not a readable torch checkpoint"):
        safe_torch_load(truncated)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{empty}: not a readable torch checkpoint"):
        safe_torch_load(empty)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match=rf"{junk}: not a readable torch checkpoint"):
        safe_torch_load(junk)
    with pytest.raises(FileNotFoundError, match="nothere.pt: checkpoint file not found"):
        safe_torch_load(tmp_path / "nothere.pt")


def test_safe_torch_load_refuses_a_plain_code_pickle(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Exploit(os.system, "true"), protocol=2))
    with pytest.raises(ValueError, match=rf"{evil}: refused by the weights-only loader.*system"):
        safe_torch_load(evil)


def test_numpy_allow_list_is_narrow():
    import numpy.dtypes

    assert numpy_pickle_global("numpy.dtypes", "Float16DType") is numpy.dtypes.Float16DType
    for module, name in [("numpy", "load"), ("numpy.lib.npyio", "NpzFile"),
                         ("numpy.ctypeslib", "NotADType"), ("numpy", "LoadDType")]:
        assert numpy_pickle_global(module, name) is None, (module, name)
    evil = b"cnumpy\nload\n(S'/etc/passwd'\ntR."
    with pytest.raises(UnsafePickleError, match="numpy.load"):
        safe_pickle_loads(evil)
