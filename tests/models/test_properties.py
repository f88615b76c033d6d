"""Property tests: input-shape validation and wildcard listing."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroxai.errors import ModelError
from neuroxai.models import validate_input_shape

sizes = st.integers(min_value=1, max_value=4096)


@settings(max_examples=30, deadline=None)
@given(st.tuples(sizes, sizes, st.integers(min_value=1, max_value=8)))
def test_valid_shapes_round_trip(shape):
    assert validate_input_shape(list(shape)) == shape


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=64), min_size=0, max_size=5))
def test_invalid_shapes_always_raise_model_error(dims):
    valid = len(dims) == 3 and all(d > 0 for d in dims)
    if valid:
        assert validate_input_shape(dims) == tuple(dims)
    else:
        with pytest.raises(ModelError, match="input_shape"):
            validate_input_shape(dims)


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="abcefnt0*?", min_size=0, max_size=6))
def test_names_pattern_is_a_sorted_subset_matching_fnmatch(registry, pattern):
    names = registry.names(pattern)
    assert names == sorted(names)
    assert set(names) <= set(registry.names())
    assert all(fnmatch.fnmatchcase(n, pattern) for n in names)
