"""Reliability of training: nonsense refused before any work, and no file dropped without a word."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuroxai.data import Dataset, write_phantoms
from neuroxai.errors import DataError, ModelError
from neuroxai.training import Trainer


def test_one_class_is_refused_before_anything_is_built(plain_spec):
    x = np.zeros((8, 32, 32), np.uint8)
    one = Dataset.from_arrays(x, [0] * 8, class_names=["glioma"], splits=["train"] * 6 + ["val"] * 2)
    with pytest.raises(DataError, match="1 class \\(glioma\\); a classifier needs at least two"):
        Trainer(plain_spec, epochs=1, progress=False).fit(one)
    # two class names, but the training split holds only one of them
    lopsided = Dataset.from_arrays(x, [0] * 6 + [1] * 2, class_names=["a", "b"], splits=["train"] * 6 + ["test"] * 2)
    with pytest.raises(DataError, match="at least two"):
        Trainer(plain_spec, epochs=1, progress=False).fit(lopsided)


def test_an_absurd_image_size_fails_at_once_saying_the_memory_it_would_take(plain_spec, tiny_ds):
    with pytest.raises(ModelError, match=r"image_size 100000x100000 is larger than the limit of 4096x4096.*GB"):
        Trainer(plain_spec, image_size=100000, progress=False).fit(tiny_ds)


def test_an_optimizer_with_a_nonsense_learning_rate_is_refused(plain_spec, tiny_ds):
    import keras

    opt = keras.optimizers.SGD()
    opt.learning_rate = float("nan")
    with pytest.raises(ModelError, match="learning rate must be a finite number > 0"):
        Trainer(plain_spec, optimizer=opt, progress=False).fit(tiny_ds)


def test_a_strategy_of_the_other_backend_or_of_neither_kind_is_refused_before_anything_is_written(plain_spec, tiny_ds, tmp_path):
    import keras

    from neuroxai.errors import BackendError

    out = tmp_path / "run"
    with pytest.raises(BackendError, match=r"keras.distribution \(DataParallel\) runs on the jax.*MirroredStrategy"):
        Trainer(plain_spec, epochs=1, strategy=keras.distribution.DataParallel()).fit(tiny_ds, out_dir=out)
    with pytest.raises(ModelError, match=r"Expected strategy to be None, a tf.distribute.Strategy"):
        Trainer(plain_spec, epochs=1, strategy="mirrored").fit(tiny_ds, out_dir=out)
    assert not out.exists()


@pytest.mark.slow
def test_files_that_go_bad_after_indexing_are_counted_listed_and_recorded(plain_spec, tmp_path):
    root = write_phantoms(tmp_path / "data", n_per_class=6, image_size=32, seed=3, masks=False, test_fraction=0.34)
    (root / "Testing" / "glioma" / "zero.png").write_bytes(b"")  # unreadable before indexing: skipped by the Dataset
    ds = Dataset(root, progress=False, val_fraction=0.2)
    train, test = ds.paths("train"), ds.paths("test")
    broken = [train[0], train[1], test[0]]
    for path in broken:  # corrupted after indexing, as a sync or a disk error would
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)

    t = Trainer(plain_spec, epochs=1, batch_size=4, progress=False, tensorboard=False).fit(ds, out_dir=tmp_path / "run")
    listed = {f.path: f.reason for f in t.unreadable_}
    assert set(broken) <= set(listed)  # one attribute holds every file that failed while used
    assert "became unreadable after indexing and was left out of training" in listed[train[0]]
    assert {f.path for f in t.metrics_.unreadable} == {test[0], str(root / "Testing" / "glioma" / "zero.png")}
    assert t.metrics_.metrics.n == len(test) - 1
    spec = json.loads((tmp_path / "run" / "neuroxai.json").read_text())
    assert spec["data"]["used"] == {"train": len(train) - 2, "val": len(ds.labels("val")), "test": len(test) - 1}
    assert set(broken) <= {f["path"] for f in spec["data"]["unreadable"]}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert test[0] in {f["path"] for f in metrics["unreadable"]}
