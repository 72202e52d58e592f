"""Dense category indices for LightGBM, learned from the training rows.

The feature pipeline codes categoricals as stable integers (country letters, CRC-32 hashes in
a million buckets), which LightGBM accepts but bins sparsely, and then warns from its worker
threads where no Python logger can catch it. A model therefore keeps, per categorical
feature, the sorted codes seen in training and replaces each code by its position; a code
never seen in training becomes missing (NaN), which is what LightGBM would make of it anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt


def dense_indices(
    codes: npt.NDArray[np.float64], known: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Each code's position among the sorted ``known`` codes; NaN where it is not one of them
    (a code never seen, or missing)."""
    out = np.full(len(codes), np.nan, dtype=np.float32)
    if len(known):
        position = np.minimum(np.searchsorted(known, codes), len(known) - 1)
        found = known[position] == codes
        out[found] = position[found]
    return out


class CategoryIndex:
    """Per categorical column of a feature matrix: the known codes, in order."""

    def __init__(self, feature_names: Sequence[str], codes: Mapping[str, Sequence[float]]) -> None:
        self.codes = {
            name: np.asarray(sorted(values), dtype=np.float64) for name, values in codes.items()
        }
        self._columns = [(feature_names.index(name), known) for name, known in self.codes.items()]

    @classmethod
    def fit(
        cls,
        matrix: npt.NDArray[np.floating],
        feature_names: Sequence[str],
        categorical: Sequence[str],
    ) -> CategoryIndex:
        """The distinct non-missing codes of each categorical column of ``matrix``."""
        codes = {}
        for name in categorical:
            column = matrix[:, feature_names.index(name)]
            codes[name] = np.unique(column[~np.isnan(column)]).tolist()
        return cls(feature_names, codes)

    def transform(self, matrix: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """A float32 copy with every categorical code replaced by its dense index."""
        out = np.array(matrix, dtype=np.float32, copy=True)
        for index, known in self._columns:
            out[:, index] = dense_indices(out[:, index].astype(np.float64), known)
        return out

    def to_dict(self) -> dict[str, list[float]]:
        return {name: values.tolist() for name, values in self.codes.items()}
