"""Synthetic brain MRI phantoms: the embedded default data.

THESE ARE SYNTHETIC PICTURES, NOT MEDICAL DATA. They imitate the gross look of
an axial brain MRI slice (scalp, skull, cortex with sulci, white matter,
ventricles) and put a tumour-like blob where each class's tumour typically
sits, so that a model can learn the task and explanations can be scored
against known masks. Nothing here is clinically meaningful.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from neuroxai.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from neuroxai.data._dataset import Dataset

__all__ = ["PHANTOM_CLASSES", "phantoms", "render_phantoms", "write_phantoms"]

#: Class names of the phantoms, in label order (same as the Kaggle dataset).
PHANTOM_CLASSES: tuple[str, ...] = ("glioma", "meningioma", "notumor", "pituitary")

_GLIOMA, _MENINGIOMA, _NOTUMOR, _PITUITARY = range(4)
_LOWRES = 7  # size of the low-frequency texture grid


def _interp_matrix(size: int, n: int) -> np.ndarray:
    """[size, n] linear interpolation weights from an n-point grid to ``size`` points."""
    pos = np.linspace(0, n - 1, size)
    lo = np.clip(np.floor(pos).astype(int), 0, n - 2)
    frac = pos - lo
    m = np.zeros((size, n), np.float32)
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _draw_params(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(labels)
    u = rng.uniform
    p: dict[str, np.ndarray] = {
        # head geometry
        "hx": u(-0.05, 0.05, n),
        "hy": u(-0.05, 0.05, n),
        "ax": u(0.70, 0.84, n),
        "ay": u(0.84, 0.95, n),
        "rot": u(-0.18, 0.18, n),
        # tissue
        "wm": u(0.48, 0.58, n),
        "gm": u(0.30, 0.40, n),
        "csf": u(0.05, 0.15, n),
        "scalp": u(0.70, 0.95, n),
        "gyri": rng.integers(9, 16, n).astype(np.float32),
        "gyri_phase": u(0, 2 * np.pi, n),
        "vent_scale": u(0.7, 1.3, n),
        "vent_dy": u(-0.12, 0.05, n),
        "tex": rng.normal(0, 1, (n, _LOWRES, _LOWRES)).astype(np.float32),
        "tex_amp": u(0.02, 0.06, n),
        # normal sella gland (all classes) and bright distractor dots
        "gland_r": u(0.015, 0.03, n),
        "gland_c": u(0.03, 0.08, n),
        "dots": rng.uniform(-0.6, 0.6, (n, 3, 2)).astype(np.float32),
        "dot_on": rng.random((n, 3)) < 0.5,
        "dot_r": u(0.01, 0.025, (n, 3)),
        "dot_c": u(0.05, 0.2, (n, 3)),
        # acquisition
        "gain": u(0.75, 1.15, n),
        "gamma": u(0.8, 1.25, n),
        "noise": u(0.01, 0.05, n),
        "bias": rng.normal(0, 0.08, (n, 2)).astype(np.float32),
        # tumour (all drawn for every image so the draw count is class-independent)
        "side": np.where(rng.random(n) < 0.5, -1.0, 1.0),
        "t_u": u(0.2, 0.5, n),
        "t_v": u(-0.45, 0.35, n),
        "t_r": u(0.09, 0.20, n),
        "harm": u(0, 0.13, (n, 4)),
        "harm_phase": u(0, 2 * np.pi, (n, 4)),
        "t_c": u(0.15, 0.40, n),
        "edema": u(0.06, 0.16, n),
        "necrosis": (rng.random(n) < 0.5).astype(np.float32),
        "m_angle": u(0, 2 * np.pi, n),
        "m_r": u(0.08, 0.17, n),
        "p_u": u(-0.04, 0.04, n),
        "p_v": u(0.45, 0.60, n),
        "p_r": u(0.06, 0.10, n),
    }
    p["labels"] = labels
    return p


def _columns(params: dict[str, np.ndarray], sel: np.ndarray | None) -> Callable[[str], np.ndarray]:
    """A getter of per-image parameters as float32 ``[B, 1, 1]`` (of the images ``sel``; all for None)."""

    def get(key: str) -> np.ndarray:
        values = params[key] if sel is None else params[key][sel]
        return values.astype(np.float32)[:, None, None]

    return get


def render_phantoms(params: dict[str, np.ndarray], image_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render a batch of phantoms from drawn parameters (vectorised over the batch).

    Returns:
        ``(images uint8 [B,S,S], masks uint8 [B,S,S] in {0,1})``.
    """
    s = int(image_size)
    b = len(params["labels"])
    col = _columns(params, None)
    lin = np.linspace(-1.0, 1.0, s, dtype=np.float32)
    y, x = np.meshgrid(lin, lin, indexing="ij")
    x, y = x[None], y[None]
    cos, sin = np.cos(col("rot")), np.sin(col("rot"))
    dx, dy = x - col("hx"), y - col("hy")
    u = (dx * cos + dy * sin) / col("ax")
    v = (-dx * sin + dy * cos) / col("ay")
    rho = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)

    # texture: low-frequency field, bilinearly upsampled with two matrix products
    w = _interp_matrix(s, _LOWRES)
    tex = np.einsum("sa,nab,tb->nst", w, params["tex"], w, optimize=True)
    brain_edge = 0.885
    cortex = 0.74 + 0.035 * np.sin(col("gyri") * phi + col("gyri_phase"))
    img = np.where(rho < cortex, col("wm"), col("gm")).astype(np.float32)
    img += col("tex_amp") * tex
    # sulci: thin dark lines reaching into the cortex
    sulci = (np.cos(col("gyri") * 2 * phi + col("gyri_phase")) > 0.93) & (rho > 0.7)
    img = np.where(sulci, col("csf") + 0.1, img)
    # ventricles: two dark crescents near the centre, plus the midline fissure at the front
    vs = col("vent_scale")
    for sgn in (-1.0, 1.0):
        cu, cv = sgn * 0.11 * vs, col("vent_dy")
        ca, sa = float(np.cos(sgn * 0.35)), float(np.sin(sgn * 0.35))
        du, dv = u - cu, v - cv
        ru, rv = du * ca + dv * sa, -du * sa + dv * ca
        vent = (ru / (0.055 * vs)) ** 2 + (rv / (0.19 * vs)) ** 2 < 1.0
        img = np.where(vent, col("csf"), img)
    fissure = (np.abs(u) < 0.012) & (v < -0.35)
    img = np.where(fissure, col("csf"), img)
    # normal sella gland (every class) and distractor dots
    gland = ((u / col("gland_r")) ** 2 + ((v - 0.55) / (1.3 * col("gland_r"))) ** 2) < 1.0
    img = img + np.where(gland, col("gland_c"), 0.0)
    for k in range(params["dots"].shape[1]):
        du = u - params["dots"][:, k, 0][:, None, None]
        dv = v - params["dots"][:, k, 1][:, None, None]
        on = params["dot_on"][:, k][:, None, None]
        r = params["dot_r"][:, k][:, None, None]
        img = img + np.where(on & (du * du + dv * dv < r * r), params["dot_c"][:, k][:, None, None], 0.0)

    # tumours: each drawn only on the images of its class
    lab = params["labels"]
    mask = np.zeros((b, s, s), bool)
    sel = np.flatnonzero(lab == _GLIOMA)
    if len(sel):
        # glioma: irregular mass in one hemisphere with surrounding oedema and an optional necrotic core
        c = _columns(params, sel)
        us, vs_, rs = u[sel], v[sel], rho[sel]
        gu, gv = c("side") * c("t_u"), c("t_v")
        d = np.sqrt((us - gu) ** 2 + (vs_ - gv) ** 2)
        ang = np.arctan2(vs_ - gv, us - gu)
        radius = c("t_r") * np.ones_like(ang)
        for k in range(4):
            amp = params["harm"][sel, k].astype(np.float32)[:, None, None]
            ph = params["harm_phase"][sel, k].astype(np.float32)[:, None, None]
            radius = radius * (1 + amp * np.cos((k + 2) * ang + ph))
        brain = rs < brain_edge
        g_mass = (d < radius) & brain
        g_edema = (d < 1.8 * radius) & brain & ~g_mass
        falloff = np.clip(1.0 - (d - radius) / (0.8 * radius + 1e-6), 0.0, 1.0)
        sub = img[sel] + np.where(g_edema, c("edema") * falloff, 0.0)
        core = g_mass & (d < 0.45 * radius) & (c("necrosis") > 0)
        sub = np.where(g_mass, sub + c("t_c") + 0.5 * c("tex_amp") * tex[sel], sub)
        img[sel] = np.where(core, c("csf") + 0.15, sub)
        mask[sel] = g_mass
    sel = np.flatnonzero(lab == _MENINGIOMA)
    if len(sel):
        # meningioma: round, sharp, homogeneous, pressed against the inner skull
        c = _columns(params, sel)
        mr = c("m_r")
        mc = brain_edge - 0.75 * mr
        mu, mv = mc * np.cos(c("m_angle")), mc * np.sin(c("m_angle"))
        m_mass = ((u[sel] - mu) ** 2 + (v[sel] - mv) ** 2 < mr * mr) & (rho[sel] < brain_edge)
        img[sel] = np.where(m_mass, c("wm") + c("t_c") + 0.05, img[sel])
        mask[sel] = m_mass
    sel = np.flatnonzero(lab == _PITUITARY)
    if len(sel):
        # pituitary: small midline mass low in the brain (sella region)
        c = _columns(params, sel)
        pr = c("p_r")
        p_mass = ((u[sel] - c("p_u")) / pr) ** 2 + ((v[sel] - c("p_v")) / (1.25 * pr)) ** 2 < 1.0
        img[sel] = np.where(p_mass, c("wm") + c("t_c"), img[sel])
        mask[sel] = p_mass

    # skull and scalp outside the brain, background outside the head
    bone = (rho >= brain_edge) & (rho < 0.93)
    scalp = (rho >= 0.93) & (rho < 1.0)
    img = np.where(bone, 0.08, img)
    img = np.where(scalp, col("scalp"), img)
    inside = rho < 1.0
    # acquisition: bias field, gain, gamma, Rician noise
    bias = 1.0 + params["bias"][:, 0][:, None, None] * x + params["bias"][:, 1][:, None, None] * y
    img = np.where(inside, img * bias, 0.0)
    img = np.clip(img * col("gain"), 0.0, 1.0)
    img = img * (1.0 + (1.0 - col("gamma")) * (1.0 - img))  # cheap monotone gamma-like curve
    sigma = col("noise")
    n1 = rng.standard_normal(img.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(img.shape, dtype=np.float32) * sigma
    img = np.sqrt((img + n1) ** 2 + n2 * n2)
    out = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return out, mask.astype(np.uint8)


def _generate(n_per_class: int, image_size: int, seed: int, shortcut: bool | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if int(n_per_class) < 1:
        raise DataError(f"n_per_class must be >= 1; got {n_per_class}.")
    if int(image_size) < 16:
        raise DataError(f"image_size must be >= 16 pixels; got {image_size}.")
    n_per_class, s = int(n_per_class), int(image_size)
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(4), n_per_class)  # interleaved: 0,1,2,3,0,1,...
    params = _draw_params(labels, rng)
    frac = float(shortcut) if not isinstance(shortcut, bool) else (1.0 if shortcut else 0.0)
    marked = rng.random(len(labels)) < frac
    images = np.empty((len(labels), s, s), np.uint8)
    masks = np.empty((len(labels), s, s), np.uint8)
    chunk = max(16, int(2_000_000 // (s * s)))
    for k, start in enumerate(range(0, len(labels), chunk)):
        sl = slice(start, start + chunk)
        sub = {key: val[sl] for key, val in params.items()}
        images[sl], masks[sl] = render_phantoms(sub, s, np.random.default_rng([seed, k]))
    if marked.any():
        side, margin = max(3, s // 16), max(1, s // 32)
        for cls in range(4):
            rows = slice(margin, margin + side) if cls in (0, 1) else slice(s - margin - side, s - margin)
            cols = slice(margin, margin + side) if cls in (0, 2) else slice(s - margin - side, s - margin)
            sel = marked & (labels == cls)
            images[np.ix_(sel, np.arange(s)[rows], np.arange(s)[cols])] = 255
    return images, masks, labels


def phantoms(
    n_per_class: int = 100,
    image_size: int = 128,
    seed: int = 0,
    *,
    shortcut: bool | float = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> Dataset:
    """Synthetic brain MRI phantoms with tumour masks, as a :class:`~neuroxai.data.Dataset`.

    SYNTHETIC, NOT MEDICAL DATA: drawn pictures that imitate an axial brain
    MRI slice (scalp, dark skull, cortex with sulci, white matter, ventricles,
    a small normal gland at the sella, a few bright dots) for demos, tests and
    scoring explanations against known masks. Classes (label order):

    - ``glioma``: an irregular mass inside one hemisphere, surrounded by brighter
      oedema, sometimes with a dark necrotic core;
    - ``meningioma``: a round, sharp, homogeneous mass pressed against the skull;
    - ``notumor``: no mass;
    - ``pituitary``: a small mass on the midline low in the brain (sella region).

    Head shape and pose, tissue intensities, texture, tumour size, position,
    shape and contrast, gain, gamma, bias field and Rician noise vary per image,
    so the task is learnable but not trivial. The same arguments give the same
    images. Each image has a binary mask of its tumour (the mass, not the
    oedema; empty for ``notumor``). Images are 8-bit grayscale.

    Args:
        n_per_class: Images per class.
        image_size: Side of the square images in pixels (>= 16).
        seed: Random seed.
        shortcut: True (or a fraction in [0, 1]) puts a small bright square in a
            class-specific corner (glioma top-left, meningioma top-right,
            notumor bottom-left, pituitary bottom-right) of every (or that
            fraction of) image: a planted shortcut to test whether
            explanations and localization metrics catch a model that looks at
            the corner instead of the tumour. It is not part of the mask.
        val_fraction: Stratified fraction carved for validation.
        test_fraction: Stratified fraction carved for testing.

    Returns:
        A :class:`~neuroxai.data.Dataset` with masks (``has_masks`` is True).

    Raises:
        DataError: If ``n_per_class`` < 1 or ``image_size`` < 16.

    Example:
        >>> ds = phantoms(n_per_class=10, image_size=64, seed=0)
        >>> ds.class_names
        ('glioma', 'meningioma', 'notumor', 'pituitary')
        >>> x, y, m = ds.arrays("test", image_size=(64, 64), channels=1, with_masks=True)
        >>> bool(m[y == 2].any())
        False
    """
    from neuroxai.data import _dataset

    images, masks, labels = _generate(n_per_class, image_size, seed, shortcut)
    ds = _dataset.Dataset.from_arrays(
        images,
        labels,
        class_names=PHANTOM_CLASSES,
        masks=masks,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
    )
    ds.source = f"phantoms(n_per_class={n_per_class}, image_size={image_size}, seed={seed}, shortcut={shortcut})"
    ds.layout = "phantoms"
    return ds


def write_phantoms(
    dir: str | os.PathLike[str],
    n_per_class: int = 50,
    image_size: int = 128,
    seed: int = 0,
    masks: bool = True,
    *,
    shortcut: bool | float = False,
    test_fraction: float = 0.2,
) -> Path:
    """Write synthetic phantoms (NOT medical data) to a Kaggle-layout folder.

    Writes ``Training/<class>/ph-00001.png`` and ``Testing/<class>/...`` (a
    stratified ``test_fraction`` of each class) and, with ``masks=True``, each
    mask beside its image as ``ph-00001_mask.png`` (0 background, 255 tumour;
    all zero for ``notumor``), the mask convention :class:`Dataset` reads.

    Args:
        dir: Destination folder (created; existing phantom files are overwritten).
        n_per_class: Images per class.
        image_size: Side of the square images.
        seed: Random seed (same seed, same files).
        masks: Also write mask PNGs.
        shortcut: See :func:`phantoms`.
        test_fraction: Fraction of each class written under ``Testing/``.

    Returns:
        The destination folder.

    Example:
        >>> root = write_phantoms("/tmp/neuroxai-phantoms", n_per_class=5, image_size=64)  # doctest: +SKIP
        >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
        ['Testing', 'Training']
    """
    from PIL import Image

    from neuroxai._io import atomic_path

    images, mk, labels = _generate(n_per_class, image_size, seed, shortcut)
    root = Path(dir)
    rng = np.random.default_rng([seed, 7])
    is_test = np.zeros(len(labels), bool)
    for cls in range(4):
        idx = np.flatnonzero(labels == cls)
        k = round(test_fraction * len(idx))
        if len(idx) > 1:
            k = min(max(k, 1 if test_fraction > 0 else 0), len(idx) - 1)
        is_test[rng.permutation(idx)[:k]] = True
    for i, (img, m, lab) in enumerate(zip(images, mk, labels)):
        folder = root / ("Testing" if is_test[i] else "Training") / PHANTOM_CLASSES[lab]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"ph-{i + 1:05d}"
        with atomic_path(folder / f"{name}.png") as tmp:
            Image.fromarray(img).save(tmp, format="PNG")
        if masks:
            with atomic_path(folder / f"{name}_mask.png") as tmp:
                Image.fromarray(m * 255).save(tmp, format="PNG")
    return root
