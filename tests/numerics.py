"""Tolerances for comparing model outputs, maps and metrics, from the numerics of what is compared.

CPUs differ (AVX2 or AVX-512, AMD or Intel) and so do their kernels (oneDNN, Eigen, XLA): each sums float32
products in its own order, blocked by its own vector width, and another batch size or another graph (compiled or
eager, fused or not) may pick another kernel on the same machine. A tolerance tuned until it passed on one machine
fails on the next, so every tolerance here is derived: a relative precision of one forward pass (with its reason),
times a scale the test computes from its own data (the clean score, the raw map's peak, the size of the terms that
cancel in a sum). ``make test-kernels`` runs the numerics-sensitive tests again on other kernels to keep it honest.

What does not come here: comparisons that must be exact (the same compiled function on the same batch, a seeded
rerun: ``np.testing.assert_array_equal``), and arithmetic on fixed numbers (metrics of hand-made arrays, learning-rate
schedules), where ``pytest.approx``'s default (relative 1e-6) covers float64 arithmetic many times over.

Imported by name (``from numerics import ...``): pytest puts ``tests/`` on ``sys.path`` for ``tests/conftest.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: One float32 rounding, relative: 2**-23, about 1.19e-7.
EPS32 = float(np.finfo(np.float32).eps)
#: One float16 rounding, relative: 2**-10, about 9.8e-4 (mixed precision computes layers in float16).
EPS16 = float(np.finfo(np.float16).eps)

#: Relative precision of one float32 forward (or backward) pass of the suite's small models: a few layers, each
#: output a sum of K <= ~300 products (3x3 kernels over <= 32 channels, a Dense over <= 64 pooled features) in the
#: order the kernel chooses. Reordering a sum of K terms moves it by up to K * eps of the sum of the terms' sizes in
#: the worst case, and by about sqrt(K) * eps in practice: 16 eps, 1.9e-6. Measured between AVX-512 oneDNN, AVX2
#: oneDNN and Eigen, a batch of 1 against one of 66, eager against compiled: probabilities at most 1 eps apart.
FORWARD_RTOL = 16 * EPS32
#: The same for a keras.applications backbone (50 to 250 layers, sums of up to ~4600 products): rounding errors of
#: successive layers add, and random-weight backbones pass them on with gains above 1: 1024 eps, 1.2e-4. Measured:
#: logits between oneDNN and Eigen up to 9e-5 apart, relative (InceptionV3); within one process, explainer against
#: GradientTape, below 2e-6.
DEEP_FORWARD_RTOL = 1024 * EPS32
#: The same for a small model whose layers compute in float16 (mixed precision): kernels accumulate in float32, but
#: every layer's output is stored in float16 (rounded to EPS16 / 2) and carries the rounding of the layers before it:
#: ~4 layers, 4 EPS16 (3.9e-3).
MIXED_FORWARD_RTOL = 4 * EPS16

#: How much larger the terms behind a small model's map are than the map's peak, where a test cannot compute them
#: (maps of two batch sizes, two traces, two backends): Grad-CAM sums channels (measured with :func:`cam_tol`'s terms:
#: at most 3 on the suite's tiny models, up to 35 on keras.applications backbones); an input gradient sums paths
#: through the network, not measured: 64 is 20 times the tiny models' channel sums.
SMALL_MODEL_CANCELLATION = 64
#: Maps of a small model normalised by their peak, computed twice (another batch size, graph, kernel or backend):
#: raw errors of FORWARD_RTOL times the cancelled terms, doubled by the division (:func:`normalised_tol`): 2.4e-4.
GRADIENT_MAP_TOL = 2 * FORWARD_RTOL * SMALL_MODEL_CANCELLATION

#: A map tolerance above this compares nothing: the test's data carry too little signal above rounding.
MEANINGFUL_MAP_TOL = 0.05


def forward_tol(scale: Any, rtol: float = FORWARD_RTOL) -> float:
    """Absolute tolerance for a forward pass's output compared with another computation of the same output.

    Args:
        scale: The size of what is compared (an array: its largest magnitude). Probabilities: 1.
        rtol: The forward pass's relative precision (:data:`FORWARD_RTOL`, :data:`DEEP_FORWARD_RTOL` ...).
    """
    return rtol * float(np.max(np.abs(scale)))


def difference_tol(scale: Any, rtol: float = FORWARD_RTOL) -> float:
    """Absolute tolerance for a difference of two forward passes (a probability drop, a deletion step, a reliance
    drop), each of size up to ``scale``: both carry :func:`forward_tol`, and a difference does not shrink it."""
    return 2 * forward_tol(scale, rtol)


def normalised_tol(raw_tol: float, peak: Any, limit: float = MEANINGFUL_MAP_TOL) -> float:
    """Absolute tolerance for maps divided by their peak (``normalize_maps``) whose raw values carry ``raw_tol``.

    ``|d(m / p)| <= |dm| / p + (m / p) |dp| / p <= 2 raw_tol / p`` for ``0 <= m <= p`` (the ReLU and the bilinear
    resize before the division are 1-Lipschitz and convex, so they carry the raw error over unchanged).

    Args:
        raw_tol: The error of the raw (unnormalised) values.
        peak: Each raw map's peak (the smallest counts).
        limit: Fail when the tolerance exceeds this: the raw maps' peaks are then so close to rounding that the
            comparison would check nothing, and the test needs data with a stronger signal.
    """
    smallest = float(np.min(peak))
    tol = 2 * raw_tol / smallest if smallest > 0 else float("inf")
    assert tol <= limit, f"maps of peak {smallest:.3g} are within {raw_tol:.2g} of rounding: give the test a stronger signal"
    return tol


def cam_tol(terms: Any, rtol: float = FORWARD_RTOL) -> float:
    """Absolute tolerance for a class-activation map (``ReLU(sum_k w_k A_k)`` divided by its peak).

    A sum of terms that cancel carries the rounding of the terms, not of the sum: the raw error at a pixel is
    ``rtol * sum_k |w_k A_k|`` there. After the division by the peak ``p`` (reached at pixel ``q``), a pixel of
    value ``m`` is off by at most ``(err(pixel) + (m / p) err(q)) / p`` (:func:`normalised_tol`, pixel by pixel); the
    bilinear resize mixes pixels convexly and keeps the largest.

    Args:
        terms: ``w_k * A_k`` of the reference computation, ``[B, h, w, K]``.
        rtol: The forward pass's relative precision (features and gradients).

    Returns:
        The largest tolerance over the images (0 where every map is all zero: compared exactly).
    """
    terms = np.asarray(terms, np.float64)
    tols = [0.0]
    for image in terms:
        raw = np.maximum(image.sum(axis=-1), 0.0)
        err = rtol * np.abs(image).sum(axis=-1)
        peak = raw.max()
        if peak == 0:
            continue  # an all-zero map: the other computation's must be all zero too
        at_peak = err.flat[raw.argmax()]
        tol = float(((err + raw / peak * at_peak) / peak).max())
        assert tol <= MEANINGFUL_MAP_TOL, f"a map of peak {peak:.3g} is within rounding: give the test a stronger signal"
        tols.append(tol)
    return max(tols)
