"""Data: find, index, validate, split, audit and stream brain MRI images.

- :class:`Dataset`: a Kaggle-layout folder, a folder of class folders, a CSV
  manifest or in-memory arrays, read and validated once, split into
  train / val / test (grouped by patient where the data says so), with a
  ``tf.data`` pipeline, class weights, k-fold cross-validation and an audit.
- :func:`phantoms` / :func:`write_phantoms`: synthetic brain MRI phantoms
  (NOT medical data) with tumour masks, the embedded default data.
- :func:`find_images`: which files of the given files and folders are images
  (the rule ``neuroxai explain`` and ``neuroxai predict`` use).
- :func:`read_volume` / :func:`read_volumes` / :func:`find_volumes`: scanner files (NIfTI volumes,
  DICOM series; extra ``neuroxai[medical]``) as :class:`Volume` records of axial slices in one stated
  orientation, windowed to 8-bit with a :class:`Window`; :func:`brain_slices` (the foreground test) and
  :func:`write_nifti` (results back onto the scan's grid and affine). A file claiming more than
  :data:`MAX_VOLUME_VOXELS` voxels (or an image more than :data:`MAX_IMAGE_PIXELS` pixels) is refused from its
  header, before anything is allocated; only regular files are opened.
- :func:`load_images` / :func:`to_model_input`: read arbitrary image files or
  arrays into a model-ready batch (the same conversions as the pipeline);
  :func:`resize_volume`: the same resize for a volume (3-D models).
- :func:`check_image_size`, :func:`check_image_shape`, :func:`check_channels`,
  :func:`check_input_range`: the one validation of these settings; :func:`check_pixel_range`: a batch's
  values against a model's input range.
- Records: :class:`AuditReport`, :class:`DatasetSummary`, :class:`GroupReport`,
  :class:`SkippedFile` and their parts.

Mask convention for folder layouts: ``<image stem>_mask.<ext>`` beside the image.
"""

from __future__ import annotations

from neuroxai.data._audit import NEAR_DUPLICATE_THRESHOLD, AuditReport, DuplicateReport, LabelConflict
from neuroxai.data._checks import (
    MAX_IMAGE_SIZE,
    check_channels,
    check_image_shape,
    check_image_size,
    check_input_range,
    check_pixel_range,
)
from neuroxai.data._copies import COPY_THRESHOLD, RELATED_THRESHOLD, CopyMatch, CopyReport, find_copies, image_signatures
from neuroxai.data._dataset import SPLITS, Dataset, SplitImages
from neuroxai.data._files import IMAGE_EXTENSIONS, MASK_SUFFIX, ImageFile, ImageFiles, SkippedFile, file_kind, find_images
from neuroxai.data._images import MAX_IMAGE_PIXELS, load_images, to_model_input
from neuroxai.data._index import GROUP_COLUMNS
from neuroxai.data._medical import (
    MAX_VOLUME_VOXELS,
    MEDICAL_EXTENSIONS,
    Volume,
    VolumeFiles,
    Window,
    brain_slices,
    find_volumes,
    iter_volumes,
    read_volume,
    read_volumes,
    write_nifti,
)
from neuroxai.data._phantoms import PHANTOM_CLASSES, phantoms, write_phantoms
from neuroxai.data._slices import SliceRef
from neuroxai.data._summary import DatasetSummary, DuplicateSummary, GroupReport, StraddlingGroup
from neuroxai.data._transforms import LUMA_WEIGHTS, MASK_THRESHOLD, binarize_mask, resize_masks, resize_volume

__all__ = [
    "COPY_THRESHOLD",
    "GROUP_COLUMNS",
    "IMAGE_EXTENSIONS",
    "LUMA_WEIGHTS",
    "MASK_SUFFIX",
    "MASK_THRESHOLD",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIZE",
    "MAX_VOLUME_VOXELS",
    "MEDICAL_EXTENSIONS",
    "NEAR_DUPLICATE_THRESHOLD",
    "PHANTOM_CLASSES",
    "RELATED_THRESHOLD",
    "SPLITS",
    "AuditReport",
    "CopyMatch",
    "CopyReport",
    "Dataset",
    "DatasetSummary",
    "DuplicateReport",
    "DuplicateSummary",
    "GroupReport",
    "ImageFile",
    "ImageFiles",
    "LabelConflict",
    "PipelineState",
    "SkippedFile",
    "SliceRef",
    "SplitImages",
    "StraddlingGroup",
    "Volume",
    "VolumeFiles",
    "Window",
    "binarize_mask",
    "brain_slices",
    "check_channels",
    "check_image_shape",
    "check_image_size",
    "check_input_range",
    "check_pixel_range",
    "file_kind",
    "find_copies",
    "find_images",
    "find_volumes",
    "image_signatures",
    "iter_volumes",
    "load_images",
    "phantoms",
    "read_volume",
    "read_volumes",
    "resize_masks",
    "resize_volume",
    "to_model_input",
    "write_nifti",
    "write_phantoms",
]


def __getattr__(name: str) -> object:
    if name == "PipelineState":  # imports TensorFlow: only on use, so `import neuroxai.data` stays fast
        from neuroxai.data._pipeline import PipelineState

        return PipelineState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
