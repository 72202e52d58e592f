"""Reasons are written in Russian and in English: officers read either, whatever --lang was."""

from __future__ import annotations

import polars as pl
from score_support import world

from pipelines.score import score_batch
from risk.lanes import CapacityConfig, LaneCapacity
from risk.rules import HardRule, RuleSet

CAPACITY = CapacityConfig(
    seed=3,
    default=LaneCapacity(physical_per_hour=1.0, document_per_hour=3.0, horizon_hours=8.0),
)
CYRILLIC = r"[\u0400-\u04ff]"
RULE_RU = "Правило watch: импортёр в списке наблюдения"
RULE_EN = "Rule watch: importer on the watch list"


def _rules(importer: str) -> RuleSet:
    return RuleSet(
        rules=(
            HardRule(
                name="watch",
                lane="red",
                reason_en="importer on the watch list",
                reason_ru="импортёр в списке наблюдения",
                importer_ids=(importer,),
            ),
        )
    )


def test_every_reason_in_both_languages_and_reasons_in_the_scored_one() -> None:
    w = world()
    rules = _rules(w.queue["importer_id"][0])
    by_lang = {
        lang: score_batch(
            w.queue, w.scorer, rules=rules, capacity=CAPACITY, arrivals=w.arrivals, lang=lang
        )
        for lang in ("en", "ru")
    }
    en, ru = by_lang["en"], by_lang["ru"]
    for name in ("items", "declarations", "trucks"):
        frame_en, frame_ru = getattr(en, name), getattr(ru, name)
        # SHAP once, the texts twice: both runs carry the same two languages.
        lang_columns = [c for c in ("reasons", "rule_reason") if c in frame_en.columns]
        assert frame_en.drop(lang_columns).equals(frame_ru.drop(lang_columns)), name
        assert frame_en["reasons"].equals(frame_en["reasons_en"].alias("reasons")), name
        assert frame_ru["reasons"].equals(frame_ru["reasons_ru"].alias("reasons")), name
        has = frame_en.filter(pl.col("reasons_en").list.len() > 0)
        assert has.height > 0, name
        # The same reasons, one for one, and the Russian ones in Cyrillic.
        assert has["reasons_ru"].list.len().equals(has["reasons_en"].list.len()), name
        ru_texts = has["reasons_ru"].explode()
        en_texts = has["reasons_en"].explode()
        assert ru_texts.str.contains(CYRILLIC).all(), name
        assert not en_texts.str.contains(CYRILLIC).any(), name
        assert (ru_texts != en_texts).all(), name

    trucks = en.trucks.filter(pl.col("selection") == "rule")
    assert trucks.height > 0
    assert (
        trucks["reasons_ru"].list.first() == "Правило watch: импортёр в списке наблюдения"
    ).all()
    assert (trucks["reasons_en"].list.first() == "Rule watch: importer on the watch list").all()
    assert ru.items["rule_reason"].equals(ru.items["rule_reason_ru"].alias("rule_reason"))
    ruled = en.items.filter(pl.col("rule_reason").is_not_null())
    assert ruled.height > 0
    assert set(ruled["rule_reason_ru"]) == {RULE_RU}
    assert set(ruled["rule_reason_en"]) == {RULE_EN}
    assert en.items.filter(pl.col("rule_reason").is_null())["rule_reason_ru"].null_count() == (
        en.items.height - ruled.height
    )
    random = en.trucks.filter(selection="random")
    assert random.height > 0
    assert random["reasons_ru"].list.first().str.starts_with("Случайный отбор").all()
