"""Training: the Trainer, saved runs and classification metrics.

- :class:`Trainer`: fit a registry model (or your own Keras model) on a
  :class:`~neuroxai.data.Dataset`, with two-phase fine-tuning for transfer
  models, early stopping, learning-rate reduction, checkpoints, resume after
  an interruption and ``tf.distribute`` strategies; evaluate it; write a run
  directory.
- :func:`load` / :class:`Predictor`: a saved run back, taking files, PIL
  images or arrays.
- :func:`classification_metrics`, :func:`expected_calibration_error`.

Run directory layout (written atomically)::

    run_dir/
      model.keras            the trained model (Keras format, loads in safe mode)
      neuroxai.json          class names, input shape/range, target layer, versions, settings, data summary
      history.csv            one row per epoch (epoch, phase, loss, accuracy, val_*, learning_rate)
      metrics.json           Trainer.evaluate() on the test split (and the de-duplicated test split)
      confusion_matrix.png   training_curves.png
      checkpoints/best.keras best model by validation loss
      logs/                  TensorBoard log
      backup/                resume state while training runs (removed when the run finishes)
"""

from __future__ import annotations

from neuroxai.runs import ECE_BINS, Predictor, classification_metrics, evaluate_model, expected_calibration_error, load
from neuroxai.training._trainer import LR_SCHEDULES, NOT_FITTED_MESSAGE, Trainer

__all__ = [
    "ECE_BINS",
    "LR_SCHEDULES",
    "NOT_FITTED_MESSAGE",
    "Predictor",
    "Trainer",
    "classification_metrics",
    "evaluate_model",
    "expected_calibration_error",
    "load",
]
