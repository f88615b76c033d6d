"""Training on the JAX backend: two-phase fine-tuning, exact resume, data parallelism through keras.distribution.

Run with ``make test-jax`` (``KERAS_BACKEND=jax``); in a TensorFlow process the module is skipped, since a
process runs the backend keras was first imported with. The one-phase kill-and-resume test is in test_jax.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("JAX backend tests: run `make test-jax` (KERAS_BACKEND=jax)", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from training_helpers import make_spec, run_python

from neuroxai.errors import BackendError, ModelError

pytestmark = pytest.mark.slow

EPOCHS = 3  # head phase: epoch 1; fine-tuning: epochs 2-3


class Interrupted(Exception):
    pass


class InterruptAfter(keras.callbacks.Callback):
    """Raised after the run saved its state for epoch ``k``: what a kill at that epoch boundary leaves behind."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.k:
            raise Interrupted()


class PhaseWatch(keras.callbacks.Callback):
    """Per fit call (one per phase): the layers that train, and every layer's weights before and after."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[dict] = []

    def _weights(self):
        return {layer.name: [np.array(w) for w in layer.get_weights()] for layer in self.model.layers}

    def on_train_begin(self, logs=None):
        trains = {layer.name for layer in self.model.layers if layer.trainable and layer.weights}
        variables = {v.path.split("/")[0] for v in self.model.trainable_variables}
        self.phases.append({"trainable": trains, "variables": variables, "before": self._weights()})

    def on_train_end(self, logs=None):
        self.phases[-1]["after"] = self._weights()


@pytest.fixture(scope="module")
def data():
    from neuroxai.data import phantoms

    return phantoms(n_per_class=6, image_size=32, seed=0)


def _trainer(callbacks=()):
    from neuroxai.training import Trainer

    # high learning rates make the validation loss bounce: the best epoch is not the last one, so early stopping's
    # and the plateau's memories decide the outcome and must survive an interruption
    return Trainer(
        make_spec(True),
        epochs=EPOCHS,
        fine_tune_epochs=2,
        fine_tune_lr_factor=0.5,
        batch_size=8,
        learning_rate=1.0,
        progress=False,
        seed=1,
        early_stopping_patience=2,
        reduce_lr_patience=1,
        tensorboard=False,
        callbacks=list(callbacks),
    )


def _best_weights(out: Path) -> list[np.ndarray]:
    return keras.saving.load_model(out / "checkpoints" / "best.keras", compile=False).get_weights()


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """A two-phase run never interrupted, watched phase by phase."""
    out = tmp_path_factory.mktemp("straight") / "run"
    watch = PhaseWatch()
    trainer = _trainer([watch]).fit(data, out_dir=out)
    return trainer, watch, out


def test_two_phase_fine_tuning_on_jax_freezes_the_backbone_then_unfreezes_the_named_layers(straight):
    trainer, watch, _ = straight
    assert [(p.name, p.first_epoch, p.last_epoch) for p in trainer.phases_] == [("head", 1, 1), ("fine_tune", 2, 3)]
    assert trainer.history_["phase"] == ["head", "fine_tune", "fine_tune"]
    head_lr, fine_lr = trainer.history_["learning_rate"][:2]
    assert fine_lr == pytest.approx(head_lr * 0.5)
    head, fine = watch.phases
    # what Keras compiled into each phase's training step, not only the layer flags
    assert head["trainable"] == head["variables"] == {"logits"}
    assert fine["trainable"] == fine["variables"] == {"bb_conv2", "logits"}  # the spec names bb_bn too: BN stays frozen

    def same(phase, name):
        return all(np.array_equal(a, b) for a, b in zip(phase["before"][name], phase["after"][name], strict=True))

    assert same(head, "bb_conv1") and same(head, "bb_conv2") and same(head, "bb_bn") and not same(head, "logits")
    assert same(fine, "bb_conv1") and same(fine, "bb_bn") and not same(fine, "bb_conv2") and not same(fine, "logits")


def test_a_two_phase_run_interrupted_at_each_epoch_boundary_ends_exactly_as_the_uninterrupted_run(straight, data, tmp_path):
    """Interrupted after epoch 1 (the phase boundary), resumed and interrupted after epoch 2 (inside fine-tuning),
    resumed again. JAX on CPU is deterministic here: the measured difference is zero, the test allows TF's 1e-6."""
    trainer, _, straight_out = straight
    losses = trainer.history_["val_loss"]
    assert losses.index(min(losses)) < len(losses) - 1, losses  # the best epoch is not the last one
    out = tmp_path / "run"
    for k in (1, 2):
        with pytest.raises(Interrupted):
            _trainer([InterruptAfter(k)]).fit(data, out_dir=out)
        assert json.loads((out / "backup" / "state.json").read_text())["epoch"] == k
    resumed = _trainer().fit(data, out_dir=out)
    assert resumed.history_ == trainer.history_
    assert [p.to_dict() for p in resumed.phases_] == [p.to_dict() for p in trainer.phases_]
    for got, want in zip(resumed.model_.get_weights(), trainer.model_.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for got, want in zip(_best_weights(out), _best_weights(straight_out), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert (out / "history.csv").read_text() == (straight_out / "history.csv").read_text()


def test_a_strategy_of_the_wrong_kind_or_an_unsplittable_batch_is_refused_before_anything_is_written(tmp_path, data):
    import tensorflow as tf

    from neuroxai.training import Trainer

    out = tmp_path / "run"
    with pytest.raises(BackendError, match=r"tf.distribute strategy.*tensorflow Keras backend only.*DataParallel"):
        Trainer(make_spec(False), epochs=1, strategy=tf.distribute.get_strategy()).fit(data, out_dir=out)
    with pytest.raises(ModelError, match=r"Expected strategy to be None"):
        Trainer(make_spec(False), epochs=1, strategy="mirrored").fit(data, out_dir=out)
    assert not out.exists()


DATA_PARALLEL = """
import json, logging, os, sys
import jax, keras, numpy as np
from keras.src.backend.jax import distribution_lib  # observed, not changed: how Keras splits each batch
from training_helpers import make_spec
from neuroxai.data import phantoms
from neuroxai.errors import ModelError
from neuroxai.training import Trainer
from neuroxai.training._trainer import _trim_to_shards

assert keras.backend.backend() == "jax" and jax.device_count() == 2, jax.devices()
split = []
def watch(batch, layout, batch_dim_name):
    out = original(batch, layout, batch_dim_name)
    split.append([batch.shape[0], sorted(s.data.shape[0] for s in out.addressable_shards)])
    return out
original, distribution_lib.distribute_data_input = distribution_lib.distribute_data_input, watch

ds = phantoms(n_per_class=6, image_size=32, seed=0)  # 16 train, 4 val, 4 test
def fit(strategy):
    return Trainer(make_spec(False), epochs=2, batch_size=6, learning_rate=0.05, progress=False, seed=2, tensorboard=False,
                   strategy=strategy).fit(ds)
single = fit(None)
assert not split
dp = keras.distribution.DataParallel()
parallel = fit(dp)
replicated = {v.value.sharding.is_fully_replicated for v in parallel.model_.variables}
devices = {len(v.value.sharding.device_set) for v in parallel.model_.variables}
try:
    Trainer(make_spec(False), epochs=1, batch_size=5, strategy=dp).fit(ds, out_dir=os.path.join(sys.argv[1], "odd"))
    refused = ""
except ModelError as exc:
    refused = str(exc)
import tensorflow as tf
records = []
handler = logging.Handler(); handler.emit = records.append
logging.getLogger("neuroxai.training._trainer").addHandler(handler)
batches = tf.data.Dataset.from_tensor_slices((np.arange(7.0), np.arange(7))).batch(4)
trimmed = [[len(x), len(y)] for x, y in _trim_to_shards(batches, 2, "train", 7, 4)]
print("RESULT " + json.dumps({
    "split": split, "replicated": sorted(replicated), "devices": sorted(devices), "refused": refused,
    "trimmed": trimmed, "warned": [r.getMessage() for r in records],
    "history": {"single": single.history_, "parallel": parallel.history_},
    "weights": float(max(np.abs(a - b).max() for a, b in zip(single.model_.get_weights(), parallel.model_.get_weights()))),
    "test_accuracy": [t.evaluate(ds).metrics.accuracy for t in (single, parallel)],
}))
"""


def test_data_parallel_training_over_two_cpu_devices_matches_one_device(tmp_path):
    """keras.distribution.DataParallel over two host CPU devices: replicated variables, each batch split in halves,
    the same losses and metrics as on one device (measured: within 2e-7; the test allows 1e-5)."""
    code = f"import sys; sys.argv = ['x', {str(tmp_path)!r}]\n" + DATA_PARALLEL
    env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = run_python(code, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(next(li for li in proc.stdout.splitlines() if li.startswith("RESULT "))[len("RESULT ") :])
    # every batch (images, labels, class weights) was split in halves over the two devices: 16 training images in
    # batches of 6, 6 and 4, the 4 validation images in one
    assert result["split"] and all(sum(halves) == n and halves[0] == halves[1] for n, halves in result["split"])
    assert {n for n, _ in result["split"]} == {6, 4}
    assert result["devices"] == [2] and result["replicated"] == [True]  # replicated on both devices
    assert "batch_size=5 does not split over the 2 devices" in result["refused"] and "batch_size=6" in result["refused"]
    assert not (tmp_path / "odd").exists()
    assert result["trimmed"] == [[4, 4], [2, 2]] and "1 of them are left out" in result["warned"][0]
    single, parallel = result["history"]["single"], result["history"]["parallel"]
    assert single["epoch"] == parallel["epoch"] == [1, 2]
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose(parallel[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert result["weights"] < 1e-5
    assert result["test_accuracy"][0] == pytest.approx(result["test_accuracy"][1])


def _guided_model(num_classes: int = 4):
    """Two conv blocks with batch norm and a GAP head: the guidance step carries batch statistics too.

    Average pooling, not max pooling: after a ReLU, max-pooling windows hold ties (zeros), where TensorFlow and
    XLA may route the gradient to different elements (both valid) and move the input-gradient guidance term.
    """
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(momentum=0.8)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x), name="guided")


GUIDED_TF = """
import sys
import numpy as np
import keras, tensorflow as tf
assert keras.backend.backend() == "tensorflow"
from neuroxai.models import resolve_target_layer
from neuroxai.training import MaskGuidance
from neuroxai.training._guided import GuidedModel

folder = sys.argv[1]
data = np.load(folder + "/batch.npz")
out = {}
for kind in ("cam", "gradients"):
    model = keras.saving.load_model(folder + "/initial.keras", compile=False)
    g = GuidedModel(model, MaskGuidance(kind, weight=2.0), resolve_target_layer(model, "features"))
    g.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    g.train_step(((tf.constant(data["x"]), tf.constant(data["m"])), tf.constant(data["y"])))
    out[kind + "/guidance"] = float(g.guidance_tracker.result())
    out[kind + "/loss"] = float(g.ce_tracker.result())
    for i, w in enumerate(model.get_weights()):
        out[f"{kind}/w{i}"] = w
np.savez(folder + "/tf.npz", **out)
"""


def test_mask_guided_training_on_jax_takes_the_step_tensorflow_takes(tmp_path):
    """One SGD step of guided training from the same weights on the same batch, on JAX (through the Trainer for
    "cam", through the guided model's own fit for "gradients") and on TensorFlow: the same guidance loss,
    cross-entropy, weights and batch statistics (measured: within 1e-6; the test allows 1e-5).

    One exception, TensorFlow's: with ``"gradients"`` the first convolution's kernel enters the guidance term
    directly (the input gradient is its transposed convolution), and TensorFlow's nested-tape gradient of that
    term differs from JAX's by about 2% of the step. A float64 finite difference along the difference (smooth
    activations, same model otherwise) agrees with JAX to 1e-4 and not with TensorFlow, so that kernel's step is
    only required to point the same way."""
    from neuroxai.data import phantoms
    from neuroxai.models import resolve_target_layer
    from neuroxai.training import MaskGuidance, Trainer
    from neuroxai.training._guided import GuidedModel

    ds = phantoms(n_per_class=4, image_size=32, seed=0)
    x, y, m = ds.arrays("train", image_size=(32, 32), channels=1, with_masks=True)
    m = m[..., None].astype(np.float32)
    assert 0 < int(m.reshape(len(m), -1).max(axis=1).sum()) < len(m)  # some images with a mask, some without
    keras.utils.set_random_seed(0)
    initial = _guided_model()
    initial.save(tmp_path / "initial.keras")
    np.savez(tmp_path / "batch.npz", x=x, y=y.astype(np.int32), m=m)
    proc = run_python(f"import sys; sys.argv = ['x', {str(tmp_path)!r}]\n" + GUIDED_TF, env={"KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    expected = np.load(tmp_path / "tf.npz")

    # "cam" through the Trainer: the whole training split in one batch (the mean loss does not depend on its order)
    model = keras.saving.load_model(tmp_path / "initial.keras", compile=False)
    trainer = Trainer(
        model,
        epochs=1,
        batch_size=len(x),
        optimizer=keras.optimizers.SGD(0.1),
        augment=False,
        class_weight=False,
        early_stopping_patience=None,
        reduce_lr_patience=None,
        lr_schedule="constant",
        progress=False,
        tensorboard=False,
        guidance=MaskGuidance("cam", weight=2.0, layer="features"),
    ).fit(ds)
    assert trainer.history_["guidance_loss"][0] == pytest.approx(float(expected["cam/guidance"]), abs=1e-5)
    assert trainer.history_["loss"][0] == pytest.approx(float(expected["cam/loss"]), abs=1e-5)
    assert np.isfinite(trainer.history_["val_loss"]).all() and "val_guidance_loss" not in trainer.history_
    for i, w in enumerate(trainer.model_.get_weights()):
        np.testing.assert_allclose(w, expected[f"cam/w{i}"], atol=1e-5, err_msg=f"cam weight {i}")

    # "gradients" through GuidedModel.fit: Keras' JAX step calling the guided loss
    model = keras.saving.load_model(tmp_path / "initial.keras", compile=False)
    guided = GuidedModel(model, MaskGuidance("gradients", weight=2.0), resolve_target_layer(model, "features"))
    guided.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    logs = guided.fit((x, m), y, batch_size=len(x), epochs=1, shuffle=False, verbose=0).history
    assert logs["guidance_loss"][0] == pytest.approx(float(expected["gradients/guidance"]), abs=1e-5)
    assert logs["loss"][0] == pytest.approx(float(expected["gradients/loss"]), abs=1e-5)
    start = initial.get_weights()
    for i, w in enumerate(model.get_weights()):
        if i == 0:  # the first kernel: see the docstring
            ours, theirs = (w - start[0]).ravel(), (expected["gradients/w0"] - start[0]).ravel()
            assert ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs)) > 0.99
            continue
        np.testing.assert_allclose(w, expected[f"gradients/w{i}"], atol=1e-5, err_msg=f"gradients weight {i}")
