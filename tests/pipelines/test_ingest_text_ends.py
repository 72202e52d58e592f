"""The native text-ends pass agrees with cleaning on the cells it passes, chunk by chunk."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.ingest.parse import TEXT_CODE_FIELDS, _unchanged
from pipelines.ingest.text_ends import clean_ends

PIECES = ["A", "z", "Ё", "лка", " ", "\t", "\u00a0", "\u3000", "\u2028", "…", "7", "«", "ß", "-"]
CODE_PIECES = ["C", "N", "7", "-", "z", " ", "É"]


def _random_texts(seed: int, n: int, pieces: list[str]) -> list[str | None]:
    rng = np.random.default_rng(seed)
    texts: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.1:
            texts.append(None)
            continue
        size = int(rng.integers(0, 6))
        texts.append("".join(pieces[i] for i in rng.integers(0, len(pieces), size)))
    return texts


@pytest.mark.parametrize("code", [False, True])
def test_a_column_passes_only_if_cleaning_keeps_every_cell(code: bool) -> None:
    field = "origin_country" if code else "goods_description"
    assert (field in TEXT_CODE_FIELDS) == code
    texts = _random_texts(3, 6_000, CODE_PIECES if code else PIECES)
    passed = 0
    for start in range(0, len(texts), 3):
        column = pl.Series(texts[start : start + 3], dtype=pl.String)
        if clean_ends(column, code=code):
            assert _unchanged(column.drop_nulls(), field), column.to_list()
            passed += 1
    assert passed > 20  # the property was tried on passing columns too


def test_every_chunk_is_seen_with_its_offset_and_nulls() -> None:
    clean = pl.Series(["ok", None, "ТОО «Астана»", "a long text of more than twelve bytes"])
    assert clean_ends(clean)
    for bad in [" ok", "ok ", "", "a long text ending in a space of more than twelve "]:
        chunked = pl.concat([clean, pl.Series([None, bad]), clean], rechunk=False)
        assert chunked.n_chunks() == 3
        assert not clean_ends(chunked), bad
        # A slice that leaves the bad cell out passes; one that keeps it does not.
        assert clean_ends(chunked.slice(6, 4))
        assert not clean_ends(chunked.slice(3, 3))
    assert clean_ends(pl.Series([None, None], dtype=pl.String))
    assert clean_ends(pl.Series([], dtype=pl.String))


def test_codes_must_be_ascii_without_lower_case() -> None:
    assert clean_ends(pl.Series(["CN", "KZ", "X1"]), code=True)
    for bad in ["cn", "ß", "É", "C N "]:
        assert not clean_ends(pl.Series(["CN", bad]), code=True)
    assert clean_ends(pl.Series(["cn", "Ёлка"]))  # not codes: case and script are kept
