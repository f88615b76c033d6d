"""Helpers for the volume tests: phantom volumes with known tumour positions, written as NIfTI with a non-trivial affine.

Imported by name (``from volume_helpers import ...``); a unique module name, because every test folder has
its own ``conftest``.
"""

from __future__ import annotations

import numpy as np
from xai_helpers import CLASS_NAMES, make_phantoms, train_cnn

CLASSES = tuple(CLASS_NAMES)  # glioma, meningioma, notumor
MODEL_SIZE = 32  # the model's input
SLICE = 48  # the volumes' slices (resized to the model's input, maps resized back)
EMPTY = -1

#: Source-grid affine of :func:`to_source`: array axes permuted and flipped against RAS (i -> R, j -> S, k -> A),
#: anisotropic voxels, an offset. Display z runs along j, rows along -k (towards P), columns along -i (towards L).
AFFINE = np.array([[1.1, 0.0, 0.0, -30.0], [0.0, 0.0, 0.9, 12.0], [0.0, 2.5, 0.0, -7.5], [0.0, 0.0, 0.0, 1.0]])


#: Slice probability the per-volume rule asks of the tiny test CNN (trained for seconds on 120 phantoms, its tumour
#: slices reach 0.6-0.9, below the default 0.9 chosen for real runs); the tests check which slices the rule uses.
TEST_SLICE_THRESHOLD = 0.5


def train_phantom_model():
    x, y, _ = make_phantoms(40, size=MODEL_SIZE, seed=1)
    return train_cnn(x, y, epochs=12)


def phantom_stack(labels, seed: int = 0):
    """Display-orientation slices ``[Z, SLICE, SLICE]`` in 0..1 with the given classes (``EMPTY``: a blank slice).

    Returns ``(stack, masks)``: masks ``[Z, SLICE, SLICE]`` bool mark each tumour.
    """
    images, classes, masks = make_phantoms(max(3, len(labels)), size=SLICE, seed=seed)
    out = np.zeros((len(labels), SLICE, SLICE), np.float32)
    out_masks = np.zeros(out.shape, bool)
    taken: set[int] = set()
    for z, label in enumerate(labels):
        if label == EMPTY:
            continue
        i = next(i for i in range(len(classes)) if classes[i] == label and i not in taken)
        taken.add(i)
        out[z], out_masks[z] = images[i, ..., 0], masks[i]
    return out, out_masks


def to_source(display: np.ndarray) -> np.ndarray:
    """A display-orientation array ``[Z, H, W]`` on the source grid of :data:`AFFINE` (``[W, Z, H]``, i and k reversed)."""
    return np.ascontiguousarray(np.transpose(display, (2, 0, 1))[::-1, :, ::-1])


def write_phantom_nifti(path, stack: np.ndarray, scale: float = 1000.0) -> None:
    """Write a display stack (0..1) as a NIfTI file on the source grid of :data:`AFFINE`, intensities times ``scale``."""
    import nibabel as nib

    nib.save(nib.Nifti1Image((to_source(stack) * scale).astype(np.float32), AFFINE), str(path))


def fixed_window(scale: float = 1000.0):
    """The window that maps 0..scale to 0..255 (the slices the model sees are the phantoms as trained)."""
    from neuroxai.data import Window

    return Window(mode="fixed", center=scale / 2, width=scale)
