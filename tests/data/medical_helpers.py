"""Builders for scanner-file tests: NIfTI volumes, DICOM series and phantom volumes (unique module name).

Other test folders may import it after putting ``tests/data`` on ``sys.path``.

- :func:`make_nifti` writes a ``[Z, Y, X]`` stack as NIfTI; with the default affine (``LPS_AFFINE``-like
  diagonal) ``read_volume(path).voxels`` equals the stack exactly (radiological display).
- :func:`make_dicom_series` writes one 16-bit DICOM file per slice, with rescale slope/intercept, in a
  shuffled order under shuffled names; with the default axial orientation ``read_volume(folder).voxels``
  equals the stack (to within the rescale rounding).
- :func:`make_nifti_display` writes a NIfTI with any affine (oblique, permuted) whose display is a given
  stack; :func:`display_to_file` / :func:`file_to_display` do that reordering with nibabel (not neuroxai),
  so tests compare our reader against an independent one.
- :func:`lps_affine`, :func:`oblique_affine`: affines for tests.
- :func:`phantom_volume` builds a head-like float volume with a bright tumour blob at a known voxel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def lps_affine(spacing: Sequence[float] = (1.0, 1.0, 1.0), origin: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """``diag(-sx, -sy, sz)``: array axis 0 runs to the patient's left, 1 to posterior, 2 to superior (BraTS-like).

    With it, the display orientation is the stored ``[z, y, x]`` stack itself.
    """
    aff = np.diag([-float(spacing[0]), -float(spacing[1]), float(spacing[2]), 1.0])
    aff[:3, 3] = origin
    return aff


def oblique_affine(
    angles_deg: Sequence[float] = (12.0, -7.0, 20.0), spacing: Sequence[float] = (0.9, 1.1, 2.5), perm: Sequence[int] = (0, 1, 2)
) -> np.ndarray:
    """A rotated (oblique), anisotropic affine, its columns permuted by ``perm`` (e.g. a sagittal-stored scan)."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    rzs = (rz @ ry @ rx) @ np.diag(spacing)
    aff = np.eye(4)
    aff[:3, :3] = rzs[:, list(perm)]
    aff[:3, 3] = (-30.0, 12.5, 7.0)
    return aff


def make_nifti(
    path: str | os.PathLike[str],
    volume_zyx: np.ndarray,
    affine: np.ndarray | None = None,
    *,
    dtype: type | np.dtype | None = None,
    slope: float | None = None,
    inter: float | None = None,
    qform_code: int = 1,
    sform_code: int = 1,
) -> Path:
    """Write ``volume_zyx`` (``[Z, Y, X]``) as NIfTI: the file's data array is ``volume_zyx.transpose(2, 1, 0)``.

    Args:
        path: ``.nii`` or ``.nii.gz``.
        volume_zyx: The stack (2-D is one slice; 4-D ``[T, Z, Y, X]`` writes a 4-D file ``[X, Y, Z, T]``).
        affine: The file's affine; default :func:`lps_affine` (display == the stack).
        dtype: On-disk data type (default: the array's).
        slope, inter: ``scl_slope`` / ``scl_inter`` to store (the data is then stored as
            ``(volume - inter) / slope`` in ``dtype``).
        qform_code, sform_code: Header codes.
    """
    import nibabel as nib

    arr = np.asarray(volume_zyx)
    data = arr.T  # [Z, Y, X] -> [X, Y, Z]; [T, Z, Y, X] -> [X, Y, Z, T]; [Y, X] -> [X, Y]
    aff = lps_affine() if affine is None else np.asarray(affine, dtype=np.float64)
    if slope is not None or inter is not None:
        s, i = slope or 1.0, inter or 0.0
        stored = (data.astype(np.float64) - i) / s
        data = np.rint(stored).astype(dtype or np.int16)
    elif dtype is not None:
        data = data.astype(dtype)
    img = nib.Nifti1Image(np.ascontiguousarray(data), aff)
    img.set_qform(aff, code=qform_code)
    img.set_sform(aff, code=sform_code)
    if slope is not None or inter is not None:
        img.header.set_slope_inter(slope or 1.0, inter or 0.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out


def display_to_file(stack_zyx: np.ndarray, affine: np.ndarray, convention: str = "radiological") -> np.ndarray:
    """The file-order data array that shows as ``stack_zyx`` under ``affine`` (computed with nibabel, not neuroxai).

    Display: z inferior -> superior, rows anterior -> posterior, columns towards the patient's left
    (radiological) or right (neurological).
    """
    import nibabel.orientations as nio

    disp = np.asarray(stack_zyx)
    if convention == "neurological":
        disp = disp[:, :, ::-1]
    canonical = disp[:, ::-1, ::-1].transpose(2, 1, 0)  # [R, A, S]
    to_file = nio.ornt_transform(nio.axcodes2ornt(("R", "A", "S")), nio.io_orientation(affine))
    return np.ascontiguousarray(nio.apply_orientation(canonical, to_file))


def file_to_display(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The radiological display ``[Z, Y, X]`` of a file-order array under ``affine`` (nibabel's closest canonical)."""
    import nibabel.orientations as nio

    canonical = nio.apply_orientation(np.asarray(data), nio.io_orientation(affine))  # [R, A, S]
    return np.ascontiguousarray(canonical.transpose(2, 1, 0)[:, ::-1, ::-1])


def make_nifti_display(
    path: str | os.PathLike[str], stack_zyx: np.ndarray, affine: np.ndarray, *, dtype: type | np.dtype | None = None
) -> Path:
    """Write a NIfTI file with ``affine`` whose radiological display is ``stack_zyx`` (any affine, oblique included)."""
    data = display_to_file(stack_zyx, affine)
    return make_nifti(path, data.T, affine, dtype=dtype)  # make_nifti transposes back


AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def make_dicom_series(
    folder: str | os.PathLike[str],
    volume: np.ndarray,
    *,
    slope: float | Sequence[float] = 2.0,
    intercept: float | Sequence[float] = -1024.0,
    spacing: Sequence[float] = (0.8, 0.9, 3.0),
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-90.0, -110.0, -40.0),
    series_uid: str | None = None,
    series_number: int = 1,
    window: tuple[float, float] | None = None,
    shuffle: bool = True,
    names: Sequence[str] | None = None,
    seed: int = 0,
    signed: bool = False,
) -> list[Path]:
    """Write ``volume`` ``[Z, rows, cols]`` (scanner units) as one DICOM MR file per slice.

    Slice ``z`` lies at ``origin + z * spacing[2] * normal`` (normal = row x column direction of
    ``orientation``, LPS); stored pixels are ``round((value - intercept) / slope)`` as 16-bit unsigned
    (``signed``: signed). Files are written in a shuffled order under shuffled names (``IM_<random>.dcm``)
    with InstanceNumbers that do not follow the position either, unless ``shuffle`` is false.

    Args:
        folder: Created when missing.
        volume: ``[Z, rows, cols]`` intensities after rescale.
        slope, intercept: RescaleSlope / RescaleIntercept, one for all slices or one per slice.
        spacing: ``(row spacing, column spacing, slice spacing)`` in mm (PixelSpacing is ``[row, column]``).
        orientation: ImageOrientationPatient (row direction, column direction).
        origin: ImagePositionPatient of slice 0.
        series_uid: SeriesInstanceUID (default: a fresh one).
        series_number: SeriesNumber.
        window: ``(center, width)`` written as WindowCenter/WindowWidth; none by default.
        shuffle: Shuffle write order, names and InstanceNumbers.
        names: File names to use instead (one per slice, in slice order; ``""`` allowed for no extension).
        seed: For the shuffles.
        signed: Store int16 (PixelRepresentation 1) instead of uint16.

    Returns:
        The files, in slice order.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    vol = np.asarray(volume, dtype=np.float64)
    if vol.ndim == 2:
        vol = vol[None]
    rng = np.random.default_rng(seed)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    iop = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    uid = series_uid or generate_uid()
    study = generate_uid()
    n = vol.shape[0]
    order = rng.permutation(n) if shuffle else np.arange(n)
    instance = rng.permutation(n) + 1 if shuffle else np.arange(n) + 1
    if names is None:
        names = [f"IM_{int(v):06d}.dcm" for v in (rng.choice(10**6, n, replace=False) if shuffle else np.arange(n))]
    stored_dtype = np.int16 if signed else np.uint16
    paths = [out / names[z] for z in range(n)]
    slopes = np.broadcast_to(np.asarray(slope, dtype=np.float64), (n,))
    intercepts = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (n,))
    for z in order:
        stored = np.rint((vol[z] - intercepts[z]) / slopes[z])
        info = np.iinfo(stored_dtype)
        assert stored.min() >= info.min and stored.max() <= info.max, "value out of the 16-bit range"
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = uid
        ds.SeriesNumber = series_number
        ds.InstanceNumber = int(instance[z])
        ds.Modality = "MR"
        ds.PatientName = "Phantom^Test"
        ds.PatientID = "PHANTOM"
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        pos = np.asarray(origin, dtype=np.float64) + z * float(spacing[2]) * normal
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.PixelSpacing = [f"{float(spacing[0]):g}", f"{float(spacing[1]):g}"]
        ds.SliceThickness = f"{float(spacing[2]):g}"
        ds.Rows, ds.Columns = int(vol.shape[1]), int(vol.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleSlope = f"{slopes[z]:g}"
        ds.RescaleIntercept = f"{intercepts[z]:g}"
        if window is not None:
            ds.WindowCenter = f"{window[0]:g}"
            ds.WindowWidth = f"{window[1]:g}"
        ds.PixelData = stored.astype(stored_dtype).tobytes()
        ds.save_as(paths[z], enforce_file_format=True)
    return paths


def phantom_volume(
    shape: Sequence[int] = (12, 48, 48),
    *,
    tumour: Sequence[float] | None = (6.0, 18.0, 30.0),
    radius: float = 5.0,
    empty: int = 2,
    scale: float = 1000.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A head-like float32 ``[Z, H, W]`` volume and its bool tumour mask.

    An ellipsoid of "brain" (about 0.4 * ``scale`` with texture) on a zero background, ``empty`` all-zero
    slices at each end (no brain), and a bright sphere (``scale``) of ``radius`` voxels centred at
    ``tumour`` = ``(z, row, col)`` in display coordinates (``None``: no tumour).
    """
    rng = np.random.default_rng(seed)
    z, h, w = (int(v) for v in shape)
    zz, yy, xx = np.mgrid[0:z, 0:h, 0:w].astype(np.float64)
    inner = max(z - 2 * empty, 1)
    cz = empty + (inner - 1) / 2.0
    head = ((zz - cz) / (inner / 2.0 + 0.5)) ** 2 + ((yy - (h - 1) / 2) / (0.42 * h)) ** 2 + (
        (xx - (w - 1) / 2) / (0.38 * w)
    ) ** 2 <= 1
    head[:empty] = False
    if empty:
        head[z - empty :] = False
    vol = np.where(head, 0.4 * scale * (1 + 0.15 * rng.standard_normal(shape)), 0.0)
    mask = np.zeros(tuple(shape), dtype=bool)
    if tumour is not None:
        tz, ty, tx = tumour
        mask = ((zz - tz) ** 2 + (yy - ty) ** 2 + (xx - tx) ** 2 <= radius**2) & head
        vol[mask] = scale
    return vol.astype(np.float32), mask
