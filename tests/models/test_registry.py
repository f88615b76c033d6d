"""ModelRegistry and ModelSpec: lookup, errors, override, wildcards, plugin objects."""

from __future__ import annotations

import json

import keras
import pytest

from neuroxai.errors import ModelError, NeuroxaiError, PluginError, UnknownModelError
from neuroxai.models import ModelRegistry, ModelSpec, TransferSpec
from neuroxai.plugins import hookimpl


def tiny_factory(*, num_classes, input_shape, units=4):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(units, 3, name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(x))


def tiny_spec(name="tiny", factory=tiny_factory, **kwargs):
    return ModelSpec(
        name=name, factory=factory, input_shape=(16, 16, 1), input_range=(0.0, 1.0), target_layer="features", **kwargs
    )


@pytest.fixture
def fresh():
    return ModelRegistry(autoload=False)


def test_builtin_names_and_wildcards(fresh):
    assert fresh.names() == ["cnn", "efficientnetb0"]
    assert fresh.names("eff*") == ["efficientnetb0"]
    assert fresh.names("c?n") == ["cnn"]
    assert fresh.names("EFF*") == ["efficientnetb0"]
    assert fresh.names("resnet*") == []
    assert len(fresh) == 2
    assert list(fresh) == ["cnn", "efficientnetb0"]  # iteration yields names, as a dict does
    assert [spec.name for _, spec in fresh.items()] == ["cnn", "efficientnetb0"]


def test_contains(fresh):
    assert "cnn" in fresh
    assert "CNN" in fresh
    assert "efficientnet" not in fresh
    assert 3 not in fresh


def test_unknown_name_suggests_close_match_and_lists_available(fresh):
    with pytest.raises(UnknownModelError) as info:
        fresh.get("efficientnet")
    assert str(info.value) == "Unknown model 'efficientnet'. Did you mean 'efficientnetb0'? Available: cnn, efficientnetb0"
    assert isinstance(info.value, KeyError) and isinstance(info.value, ModelError)
    with pytest.raises(UnknownModelError, match=r"Unknown model 'zzz'\. Available: cnn, efficientnetb0"):
        fresh.create("zzz")


def test_duplicate_name_raises_unless_override(fresh):
    with pytest.raises(ModelError, match=r"Model 'cnn' from 'neuroxai' is already registered by 'neuroxai'.*override=True"):
        fresh.register(tiny_spec(name="cnn"))
    assert fresh.get("cnn").factory is not tiny_factory
    fresh.register(tiny_spec(name="cnn"), override=True)
    assert fresh.get("cnn").factory is tiny_factory


def test_register_rejects_non_spec(fresh):
    with pytest.raises(ModelError, match="expects a neuroxai.ModelSpec, got dict"):
        fresh.register({"name": "x"})


def test_create_uses_spec_defaults_and_options(fresh):
    fresh.register(tiny_spec())
    model = fresh.create("tiny", num_classes=5, units=2)
    assert tuple(model.input_shape) == (None, 16, 16, 1)
    assert model.output_shape == (None, 5)
    assert model.get_layer("features").filters == 2


def test_create_rejects_unknown_option_listing_the_valid_ones(fresh):
    with pytest.raises(
        ModelError, match=r"Model 'cnn' does not take option\(s\) widht\. Its options are: dropout, feature_stride, width\."
    ):
        fresh.create("cnn", widht=2)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((64, 64), r"got \(64, 64\)\. Add the channel axis, e.g\. \(64, 64, 1\)"),
        ((0, 64, 1), r"positive sizes, got \(0, 64, 1\)"),
        ((64, -1, 1), r"positive sizes"),
        ((64, 64, 1, 1), r"three integers"),
        ((64.5, 64, 1), r"three integers"),
    ],
)
def test_create_rejects_bad_input_shapes(fresh, shape, message):
    with pytest.raises(ModelError, match=message):
        fresh.create("cnn", input_shape=shape)


@pytest.mark.parametrize("num_classes", [1, 0, 2.0, True])
def test_create_rejects_bad_num_classes(fresh, num_classes):
    with pytest.raises(ModelError, match="num_classes to be an integer >= 2"):
        fresh.create("cnn", num_classes=num_classes)


def test_factory_not_returning_a_keras_model_names_the_plugin(fresh):
    fresh.register(tiny_spec(name="bad", factory=lambda **kw: "not a model", source="acme-models"))
    with pytest.raises(
        ModelError, match=r"Model 'bad' from plugin 'acme-models': its factory returned str, expected a keras.Model"
    ):
        fresh.create("bad")


def test_factory_failure_is_wrapped_and_chained(fresh):
    def broken(*, num_classes, input_shape):
        raise RuntimeError("boom")

    fresh.register(tiny_spec(name="broken", factory=broken, source="acme-models"))
    with pytest.raises(ModelError, match=r"Model 'broken' from plugin 'acme-models' failed to build.*RuntimeError: boom") as info:
        fresh.create("broken")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_model_without_logits_layer_is_rejected(fresh):
    def no_logits(*, num_classes, input_shape):
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(2, 3, name="features")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    fresh.register(tiny_spec(name="nologits", factory=no_logits))
    with pytest.raises(ModelError, match=r"has no layer named 'logits' or 'probabilities'"):
        fresh.create("nologits")


def test_missing_target_layer_is_rejected(fresh):
    fresh.register(ModelSpec(name="t", factory=tiny_factory, input_shape=(16, 16, 1), input_range=(0, 1), target_layer="nope"))
    with pytest.raises(ModelError, match=r"target_layer 'nope' is not a layer"):
        fresh.create("t")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bad name"}, "model name"),
        ({"name": ""}, "model name"),
        ({"input_shape": (16, 16)}, "Add the channel axis"),
        ({"input_range": (1.0, 0.0)}, "low < high"),
        ({"input_range": "x"}, "input_range"),
        ({"factory": 3}, "factory must be callable"),
        ({"transfer": "yes"}, "TransferSpec"),
    ],
)
def test_model_spec_validates_fields(kwargs, message):
    fields = {
        "name": "x",
        "factory": tiny_factory,
        "input_shape": (16, 16, 1),
        "input_range": (0, 1),
        "target_layer": None,
        **kwargs,
    }
    with pytest.raises(ModelError, match=message):
        ModelSpec(**fields)


def test_model_spec_is_frozen_and_normalised():
    spec = ModelSpec(name="x", factory=tiny_factory, input_shape=[16, 16, 1], input_range=[0, 255], target_layer=None)
    assert spec.input_shape == (16, 16, 1) and spec.input_range == (0.0, 255.0)
    with pytest.raises(AttributeError):
        spec.name = "y"  # type: ignore[misc]
    assert json.loads(json.dumps(spec.to_dict()))["input_range"] == [0.0, 255.0]


def test_transfer_spec_validates():
    with pytest.raises(ModelError, match="fine_tune_lr_factor"):
        TransferSpec(is_backbone=lambda n: True, unfreeze=lambda n: True, fine_tune_lr_factor=0)
    with pytest.raises(ModelError, match="callables"):
        TransferSpec(is_backbone="all", unfreeze=lambda n: True)


class AcmePlugin:
    """A plugin object registering one model through the hook."""

    @hookimpl
    def neuroxai_register_models(self, registry):
        registry.register(tiny_spec(name="acme"))


def test_plugin_object_registers_after_builtins_and_gets_its_source():
    registry = ModelRegistry(autoload=False, plugins=[AcmePlugin()])
    assert registry.names() == ["acme", "cnn", "efficientnetb0"]
    assert registry.get("acme").source != "neuroxai"
    described = {row.info.name: row for row in registry.plugins()}
    assert described["neuroxai.models.builtin"].models == ("cnn", "efficientnetb0")
    assert described["neuroxai.models.builtin"].info.builtin is True
    assert registry.origin("acme").builtin is False and registry.origin("cnn").name == "neuroxai.models.builtin"


def test_plugin_overriding_a_builtin_needs_override():
    class Clash:
        @hookimpl
        def neuroxai_register_models(self, registry):
            registry.register(tiny_spec(name="cnn"))

    with pytest.raises(ModelError, match="Model 'cnn' .* is already registered by 'neuroxai'"):
        ModelRegistry(autoload=False, plugins=[Clash()])

    class Replace:
        @hookimpl
        def neuroxai_register_models(self, registry):
            registry.register(tiny_spec(name="cnn"), override=True)

    assert ModelRegistry(autoload=False, plugins=[Replace()]).get("cnn").factory is tiny_factory


def test_misspelt_hook_fails_loudly():
    class Misspelt:
        @hookimpl
        def neuroxai_register_modles(self, registry):  # typo on purpose
            raise AssertionError("never called")

    with pytest.raises(PluginError, match=r"unknown hook 'neuroxai_register_modles'\. Did you mean 'neuroxai_register_models'\?"):
        ModelRegistry(autoload=False, plugins=[Misspelt()])


def test_hook_with_wrong_arguments_is_a_plugin_error():
    class WrongArgs:
        @hookimpl
        def neuroxai_register_models(self, registry, extra):
            pass

    with pytest.raises(PluginError, match="invalid hook implementation"):
        ModelRegistry(autoload=False, plugins=[WrongArgs()])


def test_exception_inside_a_hook_names_the_plugin_and_chains():
    class Crashing:
        @hookimpl
        def neuroxai_register_models(self, registry):
            raise ZeroDivisionError("oops")

    with pytest.raises(PluginError, match=r"failed in hook 'neuroxai_register_models': ZeroDivisionError: oops") as info:
        ModelRegistry(autoload=False, plugins=[Crashing()])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert isinstance(info.value, NeuroxaiError)


def test_describe_is_json_and_counts_params(fresh):
    rows = fresh.describe()
    assert [r.name for r in rows] == ["cnn", "efficientnetb0"]
    json.dumps([r.to_dict() for r in rows])
    cnn = rows[0]
    assert cnn.source == "neuroxai" and cnn.input_shape == (128, 128, 1) and cnn.input_range == (0.0, 1.0)
    assert cnn.params == fresh.create("cnn").count_params()
    assert cnn.options == {"width": 1.0, "dropout": 0.3, "feature_stride": 16}
    assert rows[1].two_phase is True and rows[1].params > 4_000_000


def test_unregister(fresh):
    fresh.unregister("cnn")
    assert "cnn" not in fresh
    with pytest.raises(UnknownModelError):
        fresh.unregister("cnn")
