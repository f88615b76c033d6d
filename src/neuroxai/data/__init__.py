"""Data: index, validate, split, audit and stream brain MRI images.

- :class:`Dataset`: a Kaggle-layout folder, a folder of class folders, a CSV
  manifest or in-memory arrays, read and validated once, split into
  train / val / test, with a ``tf.data`` pipeline, class weights and an audit.
- :func:`phantoms` / :func:`write_phantoms`: synthetic brain MRI phantoms
  (NOT medical data) with tumour masks, the embedded default data.
- :func:`load_images` / :func:`to_model_input`: read arbitrary image files or
  arrays into a model-ready batch.
- :class:`AuditReport`, :class:`SkippedFile`: what audits and loads report.

Mask convention for folder layouts: ``<image stem>_mask.<ext>`` beside the image.
"""

from __future__ import annotations

from neuroxai.data._audit import NEAR_DUPLICATE_THRESHOLD, AuditReport
from neuroxai.data._dataset import SPLITS, Dataset
from neuroxai.data._images import IMAGE_EXTENSIONS, SkippedFile, load_images, to_model_input
from neuroxai.data._index import MASK_SUFFIX
from neuroxai.data._phantoms import PHANTOM_CLASSES, phantoms, write_phantoms

__all__ = [
    "IMAGE_EXTENSIONS",
    "MASK_SUFFIX",
    "NEAR_DUPLICATE_THRESHOLD",
    "PHANTOM_CLASSES",
    "SPLITS",
    "AuditReport",
    "Dataset",
    "SkippedFile",
    "load_images",
    "phantoms",
    "to_model_input",
    "write_phantoms",
]
