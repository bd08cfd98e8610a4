"""Hypothesis strategy of arbitrary JSON values, for fuzzing the strict loaders of saved snapshots."""

from hypothesis import strategies as st

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                           max_leaves=8)
