"""Helpers for the evaluation tests: tiny phantoms, a tiny CNN, a minimal Grad-CAM and a broken explainer.

They are independent of neuroxai.data and neuroxai.explain on purpose: the
metrics are checked against a reference Grad-CAM written out in full here.
Imported by name (``from xai_helpers import ...``); a unique module name,
because every test folder has its own ``conftest``.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("glioma", "meningioma", "notumor")
SIZE = 48


def make_phantoms(n_per_class: int, size: int = SIZE, seed: int = 0, shortcut: bool = False):
    """Synthetic 'MRI' phantoms: a brain ellipse, a class-specific tumour blob and its mask.

    glioma: a large, dim blob; meningioma: a small, bright blob; notumor: none.
    With ``shortcut=True`` a bright square marks a class-specific corner.
    Returns (images [N,H,W,1] float32 in 0..1, labels [N], masks [N,H,W] bool).
    """
    rng = np.random.default_rng(seed)
    k = len(CLASS_NAMES)
    n = n_per_class * k
    labels = np.repeat(np.arange(k), n_per_class)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    brain = ((yy - c) / (0.42 * size)) ** 2 + ((xx - c) / (0.36 * size)) ** 2 <= 1
    images = np.zeros((n, size, size), np.float32)
    masks = np.zeros((n, size, size), bool)
    for i, lab in enumerate(labels):
        img = brain * (0.3 + 0.05 * rng.standard_normal((size, size)))
        if lab != 2:
            r = (0.13 if lab == 0 else 0.07) * size
            amp = 0.35 if lab == 0 else 0.65
            ang = rng.uniform(0, 2 * np.pi)
            rad = rng.uniform(0, 0.26 * size)
            ty, tx = c + rad * np.sin(ang), c + rad * np.cos(ang)
            d2 = (yy - ty) ** 2 + (xx - tx) ** 2
            masks[i] = d2 <= r**2
            img = img + amp * np.exp(-d2 / (2 * (0.6 * r) ** 2)) * brain
        if shortcut:
            s = max(3, size // 10)
            y0 = 1 if lab in (0, 2) else size - s - 1
            x0 = 1 if lab in (0, 1) else size - s - 1
            img[y0 : y0 + s, x0 : x0 + s] = 1.0
        images[i] = np.clip(img, 0, 1)
    perm = rng.permutation(n)
    return images[perm, ..., None], labels[perm], masks[perm]


def build_cnn(input_shape=(SIZE, SIZE, 1), num_classes: int = 3, seed: int = 0):
    """A tiny functional CNN with a 'last_conv' layer, 'logits' and a softmax 'probabilities' output."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    out = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(inp, out, name="tiny_cnn")


def train_cnn(images, labels, epochs: int = 12, seed: int = 0):
    import keras

    model = build_cnn(images.shape[1:], int(labels.max()) + 1, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=16, verbose=0, shuffle=True)
    return model


def gradcam_fn(model, images, targets, layer: str = "last_conv"):
    """Minimal Grad-CAM on the pre-softmax 'logits' layer: maps [N,H,W] in [0,1]."""
    import keras
    import tensorflow as tf

    sub = keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer("logits").output])
    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    t = tf.convert_to_tensor(np.asarray(targets, np.int32))
    with tf.GradientTape() as tape:
        feats, logits = sub(x, training=False)
        score = tf.gather(logits, t, axis=1, batch_dims=1)
    grads = tape.gradient(score, feats)
    w = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(w * feats, axis=-1))[..., None]
    cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0].numpy()
    mx = cam.reshape(len(cam), -1).max(axis=1)[:, None, None]
    return np.where(mx > 0, cam / np.where(mx > 0, mx, 1), 0).astype(np.float32)


def sobel_fn(model, images, targets):
    """A broken 'explainer' that ignores the model: the gradient magnitude of the image."""
    from scipy import ndimage

    x = np.asarray(images, np.float32)[..., 0]
    gx = ndimage.sobel(x, axis=1)
    gy = ndimage.sobel(x, axis=2)
    mag = np.hypot(gx, gy)
    return (mag / np.maximum(mag.reshape(len(mag), -1).max(axis=1), 1e-12)[:, None, None]).astype(np.float32)
