"""Volumes: scanner volumes in, one answer per volume, explanation volumes out.

A 2-D slice classifier applied to a 3-D scan (NIfTI, DICOM series; read by :func:`neuroxai.data.read_volume`):

- :func:`predict_volume`: every axial slice that holds brain classified in batches (and scored for being
  unlike the training data, where the run has an out-of-distribution score), and one answer per volume
  by a documented rule (:func:`volume_answer`): a tumour class on consistent evidence, no tumour, or
  :data:`REFER`, with its reason, as a :class:`VolumePrediction`;
- :func:`explain_volume`: one class explained on every brain slice (:class:`VolumeExplanation`), saved
  as a NIfTI heatmap on the scan's own grid and affine plus a montage PNG of the slices that carried
  the decision (:meth:`VolumeExplanation.save`).

A 3-D model (``Conv3D`` networks, input ``(batch, depth, height, width, channels)``) sees the whole scan:

- :func:`explain_volume_3d`: the scan resized to the model's input (:func:`volume_input`), explained in one
  call, the map resized back onto the scan's grid (:class:`Volume3DExplanation`), saved as a NIfTI heatmap
  with the scan's affine plus three orthogonal views through its peak.

The per-volume answer of a slice classifier summarises slice predictions; neither it nor a 3-D model's
answer is a diagnosis (see the guide page "Volumes").
"""

from __future__ import annotations

from neuroxai.volumes._explain import HEATMAP_SUFFIX, MONTAGE_SUFFIX, VolumeExplanation, VolumeOutputs, Weighting, explain_volume
from neuroxai.volumes._explain3d import VIEWS_SUFFIX, Volume3DExplanation, explain_volume_3d, volume_input
from neuroxai.volumes._predict import (
    DEFAULT_MAX_ASIDE,
    DEFAULT_MIN_KNOWN,
    DEFAULT_MIN_RUN,
    DEFAULT_RULE,
    DEFAULT_SLICE_THRESHOLD,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    NO_TUMOUR_CLASS,
    REFER,
    RULES,
    VolumeAnswer,
    VolumePrediction,
    model_slices,
    predict_volume,
    slice_ranges,
    volume_answer,
)

__all__ = [
    "DEFAULT_MAX_ASIDE",
    "DEFAULT_MIN_KNOWN",
    "DEFAULT_MIN_RUN",
    "DEFAULT_RULE",
    "DEFAULT_SLICE_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_K",
    "HEATMAP_SUFFIX",
    "MONTAGE_SUFFIX",
    "NO_TUMOUR_CLASS",
    "REFER",
    "RULES",
    "VIEWS_SUFFIX",
    "Volume3DExplanation",
    "VolumeAnswer",
    "VolumeExplanation",
    "VolumeOutputs",
    "VolumePrediction",
    "Weighting",
    "explain_volume",
    "explain_volume_3d",
    "model_slices",
    "predict_volume",
    "slice_ranges",
    "volume_answer",
    "volume_input",
]
