"""The state-space models and xLSTM's blocks compute what they claim: Mamba's scan against the authors' reference
(ported to numpy), each parallel form against its step-by-step form, past the length where a cumulative sum of logs
would overflow float32, and the blocks are causal."""

import numpy as np
import pytest

import models
import tasks
from models.lru import LRU
from models.mamba import selective_scan
from models.s4d import S4D
from models.xlstm import MLSTMBlock


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """state-spaces/mamba ``mamba_ssm/ops/selective_scan_interface.py::selective_scan_ref`` in numpy (real A,
    per-step B and C of shape (batch, N, L)); its layout: u, delta, z (batch, D, L), A (D, N), D and delta_bias (D,)."""
    u, delta = u.astype(np.float64), delta.astype(np.float64)
    if delta_bias is not None:
        delta = delta + delta_bias[..., None]
    if delta_softplus:
        delta = np.where(delta > 20, delta, np.log1p(np.exp(np.minimum(delta, 20))))  # torch's softplus threshold
    batch, dim, dstate = u.shape[0], A.shape[0], A.shape[1]
    x = np.zeros((batch, dim, dstate))
    ys = []
    delta_a = np.exp(np.einsum("bdl,dn->bdln", delta, A))
    delta_b_u = np.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    for i in range(u.shape[2]):
        x = delta_a[:, :, i] * x + delta_b_u[:, :, i]
        ys.append(np.einsum("bdn,bn->bd", x, C[:, :, i]))
    y = np.stack(ys, axis=2)  # (batch, dim, L)
    out = y if D is None else y + u * D[:, None]
    if z is not None:
        out = out * (z / (1 + np.exp(-z)))  # SiLU
    return out


def test_selective_scan_matches_mambas_reference_on_random_inputs():
    rng = np.random.default_rng(0)
    batch, dim, n, length = 2, 6, 4, 160  # past T=130, where a cumulative sum of log gates overflows float32
    f32 = lambda *shape, scale=1.0: (rng.standard_normal(shape) * scale).astype("float32")  # noqa: E731
    u, delta, z = f32(batch, dim, length), f32(batch, dim, length), f32(batch, dim, length)
    a = -np.exp(f32(dim, n, scale=0.5))
    b, c = f32(batch, n, length), f32(batch, n, length)
    d, delta_bias = f32(dim), f32(dim, scale=0.5)
    expected = selective_scan_ref(u, delta, a, b, c, d, z, delta_bias, delta_softplus=True)
    t = lambda v: np.transpose(v, (0, 2, 1))  # noqa: E731  (batch, channels, L) ↔ (batch, L, channels)
    ours = selective_scan(t(u), t(delta), a, t(b), t(c), d, t(z), delta_bias)
    assert np.abs(expected).max() > 1.0  # the check is not vacuous: the states carry real signal
    np.testing.assert_allclose(t(np.asarray(ours)), expected, rtol=1e-4, atol=1e-4)


def _agree(parallel, sequential, x, atol):
    parallel(x), sequential(x)
    sequential.set_weights(parallel.get_weights())
    a, b = np.asarray(parallel(x)), np.asarray(sequential(x))
    assert np.isfinite(a).all() and np.abs(a).max() > 1e-2
    np.testing.assert_allclose(a, b, atol=atol)


def test_lru_parallel_scan_matches_its_sequential_recurrence():
    x = np.random.default_rng(1).standard_normal((2, 200, 6)).astype("float32")
    _agree(LRU(8), LRU(8, parallel=False), x, atol=1e-4)


def test_lru_ring_initialisation_and_gamma_normalisation():
    layer = LRU(512, r_min=0.4, r_max=0.8, max_phase=1.0)
    layer.build((None, None, 4))
    modulus, phase = np.exp(-np.exp(np.asarray(layer.nu_log))), np.exp(np.asarray(layer.theta_log))
    assert 0.4 <= modulus.min() and modulus.max() <= 0.8 and 0 <= phase.min() and phase.max() <= 1.0
    np.testing.assert_allclose(np.exp(np.asarray(layer.gamma_log)), np.sqrt(1 - modulus**2), rtol=1e-5)


def test_s4d_convolution_matches_its_recurrence():
    x = np.random.default_rng(2).standard_normal((2, 150, 4)).astype("float32")
    _agree(S4D(8), S4D(8, recurrent=True), x, atol=1e-4)


def test_mlstm_block_parallel_form_matches_its_recurrent_form():
    x = np.random.default_rng(3).standard_normal((2, 30, 8)).astype("float32")
    parallel, recurrent = MLSTMBlock(heads=2), MLSTMBlock(heads=2, parallel=False)
    parallel(x), recurrent(x)
    weights = [w + np.random.default_rng(4).normal(0, 0.3, w.shape).astype("float32") for w in parallel.get_weights()]
    parallel.set_weights(weights)
    recurrent.set_weights(weights)
    np.testing.assert_allclose(np.asarray(parallel(x)), np.asarray(recurrent(x)), atol=1e-4)


@pytest.mark.parametrize("name", ["lru", "s4d", "mamba", "mlstm", "slstm"])
def test_the_new_mixers_are_causal(name):
    """Changing the last input step changes no earlier output (convolutions, scans and FFTs look only back)."""
    task = tasks.create("copy", length=4)
    model = models.create(name, task.signature, units=8)
    x, _ = task.generate("val", 2, seed=0)
    changed = x.copy()
    changed[:, -1] = (changed[:, -1] + 1) % task.signature.input.vocab
    a, b = np.asarray(model(x)), np.asarray(model(changed))
    np.testing.assert_allclose(a[:, :-1], b[:, :-1], atol=1e-5)
    assert np.abs(a[:, -1] - b[:, -1]).max() > 1e-6
