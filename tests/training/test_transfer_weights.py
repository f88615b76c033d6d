"""The two-phase transfer recipe end to end: efficientnetb0 from a local weights file, through the Trainer."""

from __future__ import annotations

import numpy as np
import pytest

from neuroxai import Trainer
from neuroxai.models.builtin import efficientnet


class PhaseProbe:
    """A Keras callback (made lazily) recording, per phase, trainable flags, weights before/after and the lr."""

    def __new__(cls):
        import keras

        class _Probe(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.phases = []

            def _weights(self):
                return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers if layer.weights}

            def on_train_begin(self, logs=None):
                self.phases.append(
                    {
                        "trainable": {layer.name: layer.trainable for layer in self.model.layers},
                        "before": self._weights(),
                        "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                    }
                )

            def on_train_end(self, logs=None):
                self.phases[-1]["after"] = self._weights()

        return _Probe()


def _changed(phase, name):
    return any(not np.array_equal(a, b) for a, b in zip(phase["before"][name], phase["after"][name]))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A backbone weights file in Keras' ``efficientnetb0_notop`` layout (random values: no download)."""
    import keras

    keras.utils.set_random_seed(5)
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path_factory.mktemp("weights") / "efficientnetb0_notop.weights.h5"
    source.save_weights(path)
    return path, {layer.name: layer.get_weights() for layer in source.layers if layer.weights}


def test_efficientnet_two_phases_from_a_local_weights_file(weights_file, tiny_ds):
    path, source = weights_file
    probe = PhaseProbe()
    trainer = Trainer(
        "efficientnetb0",
        epochs=2,
        image_size=32,
        batch_size=16,
        learning_rate=1e-2,
        progress=False,
        model_options={"weights": str(path)},
        callbacks=[probe],
        early_stopping_patience=None,
        reduce_lr_patience=None,
    ).fit(tiny_ds)
    head, fine = probe.phases
    assert [p.name for p in trainer.phases_] == ["head", "fine_tune"]
    assert trainer.history_["phase"] == ["head", "fine_tune"]

    # the file's weights are what the backbone starts from
    for name in ("stem_conv", "block3a_project_conv", "top_conv"):
        for got, want in zip(head["before"][name], source[name]):
            np.testing.assert_array_equal(got, want)

    # phase 1: the whole backbone frozen and unchanged, the head trained, at the full rate
    backbone = [n for n in head["before"] if efficientnet.is_backbone(n)]
    assert backbone and not any(head["trainable"][n] for n in backbone)
    assert not [n for n in backbone if _changed(head, n)]
    assert head["trainable"]["logits"] and _changed(head, "logits")
    assert head["lr"] == pytest.approx(1e-2)

    # phase 2: blocks 6-7 and the top conv unfrozen (batch norm kept frozen), the rest frozen, at 0.1x the rate
    assert fine["trainable"]["top_conv"] and fine["trainable"]["block7a_project_conv"]
    assert fine["trainable"]["block6a_expand_conv"]
    assert not fine["trainable"]["stem_conv"] and not fine["trainable"]["block5a_expand_conv"]
    assert not fine["trainable"]["top_bn"] and not fine["trainable"]["block7a_project_bn"]
    assert _changed(fine, "top_conv") and _changed(fine, "block7a_project_conv")
    for name in ("stem_conv", "block5a_expand_conv", "top_bn", "block7a_project_bn"):
        assert not _changed(fine, name), name
    assert fine["lr"] == pytest.approx(1e-2 * efficientnet.TRANSFER.fine_tune_lr_factor)
