"""Overlays, plots, saving, the method registry and plugins."""

from __future__ import annotations

import numpy as np
import pytest
from explain_models import SIZE, images_for
from PIL import Image

from neuroxai.errors import ExplainError, PluginError, UnknownMethodError
from neuroxai.explain import CAMMethod, Explainer, GradCAM, MethodRegistry, available_methods, overlay_image
from neuroxai.plugins import get_plugin_manager


@pytest.fixture(scope="module")
def explanation(tiny_models):
    model = tiny_models["sequential_gray"]
    return Explainer(model, "gradcam", class_names=["glioma", "notumor", "pituitary"]).explain(images_for(model, 3))


def test_overlay_is_uint8_rgb_and_alpha_blends(explanation):
    over = explanation.overlay(0)
    assert over.shape == (SIZE, SIZE, 3) and over.dtype == np.uint8
    plain = explanation.overlay(0, alpha=0.0)
    img = explanation.images[0, ..., 0]
    expected = np.round((img - img.min()) / (img.max() - img.min()) * 255)
    np.testing.assert_allclose(plain[..., 0], expected, atol=1)
    np.testing.assert_array_equal(plain[..., 0], plain[..., 2])  # grayscale shown as gray
    heat_only = explanation.overlay(0, alpha=1.0, cmap="gray", scaling="none")
    np.testing.assert_allclose(heat_only[..., 0] / 255.0, explanation.maps[0], atol=1 / 255 + 1e-6)
    assert not np.array_equal(explanation.overlay(0, cmap="jet"), explanation.overlay(0, cmap="viridis"))


def test_overlay_errors(explanation):
    with pytest.raises(ExplainError, match="alpha"):
        explanation.overlay(0, alpha=1.5)
    with pytest.raises(ExplainError, match="colormap"):
        explanation.overlay(0, cmap="nope")
    with pytest.raises(ExplainError, match="out of range"):
        explanation.overlay(3)
    with pytest.raises(ExplainError, match="does not match"):
        overlay_image(np.zeros((4, 4)), np.zeros((5, 5)))


def test_plot_grid_titles(explanation):
    import matplotlib.pyplot as plt

    fig = explanation.plot(true_labels=["glioma", 1, "pituitary"], ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 3
    pred = explanation.predicted_names[0]
    assert titles[0].startswith("true: glioma") and f"pred: {pred} (" in titles[0]
    assert ("\u2717" in titles[0]) == (pred != "glioma")
    plt.close(fig)
    fig = explanation.plot(n=2, show_image=True)
    assert sum(1 for ax in fig.axes if ax.images) == 4
    plt.close(fig)
    with pytest.raises(ExplainError, match="true_labels has 1"):
        explanation.plot(true_labels=[0])
    with pytest.raises(ExplainError, match="Unknown class 'x'"):
        explanation.plot(true_labels=["x", 0, 0])


def test_save_writes_pngs_atomically(explanation, tmp_path):
    paths = explanation.save(tmp_path / "out")
    assert [p.name for p in paths] == [f"{i:04d}_{n}.png" for i, n in enumerate(explanation.predicted_names)]
    for i, p in enumerate(paths):
        np.testing.assert_array_equal(np.asarray(Image.open(p)), explanation.picture(i))
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left
    named = explanation.save(tmp_path / "named", names=["a", "b", "c"])
    assert [p.name for p in named] == ["a.png", "b.png", "c.png"]
    with pytest.raises(ExplainError, match="names has 1"):
        explanation.save(tmp_path / "bad", names=["a"])


def test_registry_alias_and_errors():
    registry = MethodRegistry(autoload=False)
    assert registry.get("gradcampp") is registry.get("gradcam++")
    assert registry.get("GradCAM") is GradCAM
    with pytest.raises(PluginError, match="already registered"):
        registry.register("gradcam", GradCAM)
    registry.register("gradcam", GradCAM, override=True)
    with pytest.raises(PluginError, match="subclass of neuroxai.explain.ExplainMethod"):
        registry.register("bad", object)
    assert "gradcam" in available_methods(autoload=False)


class AbsCAM(CAMMethod):
    name = "abscam"

    def weigh(self, activations, gradients):
        import tensorflow as tf

        return tf.reduce_sum(tf.abs(gradients) * activations, axis=-1)


class _Plugin:
    from neuroxai.plugins import hookimpl

    @staticmethod
    @hookimpl
    def neuroxai_register_explainers(registry):
        registry.register("abscam", AbsCAM)


def test_plugin_adds_a_method(tiny_models):
    registry = MethodRegistry(autoload=False, plugins=[_Plugin])
    assert "abscam" in registry and "gradcam" in registry
    assert registry.origin("abscam").name != "neuroxai.explain._plugin"
    # Explainer looks names up through the process's plugin host: register the plugin there
    pm = get_plugin_manager(autoload=False)
    pm.register(_Plugin)
    try:
        model = tiny_models["functional_rgb"]
        exp = Explainer(model, "abscam").explain(images_for(model, 2))
    finally:
        pm.unregister(_Plugin)
    assert exp.method == "abscam" and exp.maps.shape == (2, SIZE, SIZE)
    with pytest.raises(UnknownMethodError, match="abscam"):  # gone with its plugin
        Explainer(model, "abscam")


class _BrokenModelPlugin:
    from neuroxai.plugins import hookimpl

    @staticmethod
    @hookimpl
    def neuroxai_register_models(registry):
        raise RuntimeError("this model plugin is broken")


def test_broken_model_plugin_does_not_break_explanations(tiny_models):
    pm = get_plugin_manager(autoload=False)
    pm.register(_BrokenModelPlugin)
    try:
        model = tiny_models["sequential_gray"]
        exp = Explainer(model, "gradcam").explain(images_for(model, 1))
    finally:
        pm.unregister(_BrokenModelPlugin)
    assert exp.maps.shape == (1, SIZE, SIZE)


def test_method_class_and_instance_accepted(tiny_models):
    model = tiny_models["functional_rgb"]
    x = images_for(model, 1)
    a = Explainer(model, GradCAM).explain(x).maps
    b = Explainer(model, GradCAM()).explain(x).maps
    np.testing.assert_array_equal(a, b)
