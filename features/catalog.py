"""What every feature means, which grey-import scheme it targets, and the reason an officer reads.

``CATALOG`` maps a feature name to its entry. Reason texts carry a ``{value}`` placeholder that
the scorer fills with the row's value (formatted by ``CatalogEntry.reason``). ``docs/features.md``
is generated from this module (``python -m features.catalog > docs/features.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from features.config import WINDOWS_DAYS
from features.history import ENTITIES

SCHEMES = {
    "undervaluation": "1. Undervaluation",
    "reexport": "2. Re-export through a third country",
    "cargo_consolidation": "3. 'Cargo' consolidation",
    "transit_diversion": "4. Transit diversion",
    "misclassification": "5. Misclassification",
    "false_origin": "6. False origin",
    "one_day_firm": "7. One-day firms",
    "weight_misdeclaration": "8. Weight/quantity misdeclaration",
    "splitting": "9. Splitting",
    "any": "Any scheme (context)",
}


@dataclass(frozen=True)
class CatalogEntry:
    """One feature: its meaning, the scheme it targets (a key of ``SCHEMES``), reason texts."""

    meaning: str
    scheme: str
    reason_ru: str
    reason_en: str

    def reason(self, value: float | int | None, language: str = "en") -> str:
        """The reason text with the value filled in (numbers rounded for reading)."""
        template = self.reason_ru if language == "ru" else self.reason_en
        return template.format(value=_readable(value))


def _readable(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{int(value):,}"


_E = CatalogEntry

_ENTITY_WORDS = {
    # name: (English noun, Russian genitive, scheme)
    "importer": ("importer", "импортёра", "one_day_firm"),
    "declarant": ("declarant (customs broker)", "декларанта (таможенного представителя)", "any"),
    "consignor": ("consignor (seller)", "отправителя (продавца)", "reexport"),
    "carrier": ("carrier", "перевозчика", "transit_diversion"),
    "truck": ("truck", "грузовика", "cargo_consolidation"),
    "importer_chapter": (
        "importer in this HS chapter",
        "импортёра в этой группе ТН ВЭД",
        "misclassification",
    ),
    "route": (
        "route (origin to crossing)",
        "маршрута (страна происхождения — пункт пропуска)",
        "false_origin",
    ),  # fmt: skip
    "origin": ("country of origin", "страны происхождения", "false_origin"),
    "hs_origin": (
        "HS heading from this origin",
        "товарной позиции из этой страны",
        "misclassification",
    ),  # fmt: skip
}


def _entity_entries() -> dict[str, CatalogEntry]:
    entries: dict[str, CatalogEntry] = {}
    for entity in ENTITIES:
        en, ru, scheme = _ENTITY_WORDS[entity.name]
        name = entity.name
        entries[f"{name}_declarations"] = _E(
            f"Declarations of this {en} before this one (all history).",
            scheme,
            f"У {ru} всего {{value}} деклараций в прошлом",
            f"The {en} has {{value}} past declarations",
        )
        for days in WINDOWS_DAYS if entity.windows else ():
            entries[f"{name}_declarations_{days}d"] = _E(
                f"Declarations of this {en} in the {days} day(s) before this one.",
                "splitting" if days == 1 else scheme,
                f"{{value}} деклараций {ru} за последние {days} дн.",
                f"{{value}} declarations by the {en} in the last {days} day(s)",
            )
        entries[f"{name}_days_since_first_seen"] = _E(
            f"Days since the {en} first appeared at the border (null: never before).",
            "one_day_firm" if name == "importer" else scheme,
            f"Впервые замечен: {{value}} дн. назад ({ru})",
            f"The {en} was first seen only {{value}} days ago",
        )
        entries[f"{name}_inspections"] = _E(
            f"Inspections of this {en} whose result was recorded before this declaration.",
            scheme,
            f"Проверок {ru} с известным результатом: {{value}}",
            f"{{value}} past inspections of the {en}",
        )
        entries[f"{name}_violation_rate"] = _E(
            f"Share of past inspections of this {en} that found a violation, shrunk towards "
            "the global rate (only results recorded before this declaration).",
            scheme,
            f"Доля нарушений по прошлым проверкам {ru}: {{value}}",
            f"Past inspections of the {en} found violations at a rate of {{value}}",
        )
        entries[f"{name}_duty_found_usd"] = _E(
            f"Extra duty (USD) assessed on this {en} in past inspections.",
            scheme,
            f"Ранее доначислено пошлин ({ru}): {{value}} долл. США",
            f"Past inspections of the {en} recovered {{value}} USD of duty",
        )
    return entries


_METRIC_WORDS = {
    "unit_value_kg": ("customs value per kg", "таможенная стоимость за кг", "undervaluation"),
    "unit_value_unit": (
        "customs value per unit",
        "таможенная стоимость за единицу",
        "undervaluation",
    ),  # fmt: skip
    "mass_per_unit": ("net mass per unit", "масса нетто единицы товара", "weight_misdeclaration"),
}


def _value_entries() -> dict[str, CatalogEntry]:
    entries: dict[str, CatalogEntry] = {}
    for metric, (en, ru, scheme) in _METRIC_WORDS.items():
        entries[f"{metric}_log_ratio"] = _E(
            f"Natural log of the {en} over the reference median for the HS code and origin "
            "(past periods only); -0.69 is half the usual.",
            scheme,
            f"{ru.capitalize()} отличается от ценового ориентира (лог. отношение {{value}})",
            f"The {en} is off the reference for this HS code and origin (log ratio {{value}})",
        )
        entries[f"{metric}_position"] = _E(
            f"Quantile position (0..1) of the {en} among past declarations of the same "
            "HS code and origin.",
            scheme,
            f"{ru.capitalize()} ниже, чем у доли {{value}} прошлых деклараций того же товара",
            f"The {en} sits at quantile {{value}} of past declarations of the same goods",
        )
        entries[f"{metric}_reference_level"] = _E(
            f"Which reference the {en} was compared with: 0 full HS code x origin, 1 six "
            "digits, 2 four digits, 3 chapter x origin, 4 chapter from any origin.",
            "misclassification",
            "Ценовой ориентир найден только на уровне {value} (0 — точный код)",
            "The reference was found only at level {value} (0 is the exact code)",
        )
        entries[f"{metric}_reference_rows"] = _E(
            f"Number of past declarations behind the {en} reference.",
            "any",
            "Ориентир рассчитан по {value} прошлым декларациям",
            "The reference rests on {value} past declarations",
        )
    return entries


CATALOG: dict[str, CatalogEntry] = {
    **_value_entries(),
    "gross_net_ratio": _E(
        "Gross over net mass of the item.",
        "weight_misdeclaration",
        "Отношение массы брутто к нетто: {value}",
        "Gross to net mass ratio is {value}",
    ),
    "trip_weighbridge_gap_ratio": _E(
        "(Weighbridge - declared gross of the whole truck) / declared gross; the reading "
        "nearest the declaration at that crossing.",
        "weight_misdeclaration",
        "Вес на весах отличается от заявленного брутто на {value} (доля)",
        "The weighbridge differs from the declared gross weight by a share of {value}",
    ),
    **_entity_entries(),
    "origin_differs_from_dispatch": _E(
        "1 when the country of dispatch differs from the country of origin.",
        "reexport",
        "Страна отправления отличается от страны происхождения",
        "Dispatched from another country than the origin (value {value})",
    ),
    "cn_origin_kz_dispatch": _E(
        "1 for goods of Chinese origin dispatched from Kazakhstan.",
        "reexport",
        "Китайский товар отправлен из Казахстана",
        "Chinese goods dispatched from Kazakhstan (value {value})",
    ),
    "is_transit": _E(
        "1 when the goods move under the transit procedure.",
        "transit_diversion",
        "Товар следует транзитом",
        "Goods declared in transit (value {value})",
    ),
    "is_eaeu_internal": _E(
        "1 when the goods move as internal EAEU trade.",
        "reexport",
        "Товар заявлен как внутренний оборот ЕАЭС",
        "Goods declared as internal EAEU trade (value {value})",
    ),
    "dispatch_from_eaeu_member": _E(
        "1 when goods of another origin were dispatched from an EAEU member.",
        "reexport",
        "Товар иного происхождения отправлен из государства ЕАЭС",
        "Goods of another origin dispatched from an EAEU member (value {value})",
    ),
    "importer_age_days": _E(
        "Days from the importer's registration to this declaration.",
        "one_day_firm",
        "Импортёр зарегистрирован {value} дн. назад",
        "The importer was registered {value} days ago",
    ),
    "importer_burst_ratio": _E(
        "Declarations of the importer in the last day over its daily mean of the last 30 days.",
        "splitting",
        "Всплеск деклараций импортёра: в {value} раз выше обычного за сутки",
        "The importer files {value} times its usual daily number of declarations",
    ),
    "value_gap_below_threshold": _E(
        "Relative distance of the item value below the nearest value threshold above it.",
        "splitting",
        "Стоимость товара ниже порога всего на {value} (доля)",
        "The item value is only a share of {value} below a threshold",
    ),
    "value_just_under_threshold": _E(
        "1 when the item value is within the configured margin below a threshold.",
        "splitting",
        "Стоимость товара чуть ниже порогового значения",
        "The item value sits just under a threshold (value {value})",
    ),
    "declaration_value_gap_below_threshold": _E(
        "Relative distance of the declaration's total value below the nearest threshold.",
        "splitting",
        "Стоимость декларации ниже порога всего на {value} (доля)",
        "The declaration total is only a share of {value} below a threshold",
    ),
    "declaration_value_just_under_threshold": _E(
        "1 when the declaration total is within the configured margin below a threshold.",
        "splitting",
        "Общая стоимость декларации чуть ниже порогового значения",
        "The declaration total sits just under a threshold (value {value})",
    ),
    "invoice_value_roundness": _E(
        "Trailing zeros of the invoice amount (5000 -> 3): invented prices are round.",
        "undervaluation",
        "Подозрительно круглая сумма счёта ({value} нулей)",
        "Suspiciously round invoice amount ({value} trailing zeros)",
    ),
    "declaration_items": _E(
        "Items in the declaration.",
        "cargo_consolidation",
        "В декларации {value} товаров",
        "The declaration has {value} items",
    ),
    "declaration_value_usd": _E(
        "Total customs value of the declaration (USD).",
        "any",
        "Таможенная стоимость декларации {value} долл. США",
        "The declaration is worth {value} USD",
    ),
    "trip_declarations": _E(
        "Declarations on the same truck at the same crossing that day.",
        "cargo_consolidation",
        "На грузовике {value} деклараций",
        "The truck carries {value} declarations",
    ),
    "trip_items": _E(
        "Items on the same truck at the same crossing that day.",
        "cargo_consolidation",
        "На грузовике {value} товарных позиций",
        "The truck carries {value} goods items",
    ),
    "trip_importers": _E(
        "Distinct consignees (importers) on the truck.",
        "cargo_consolidation",
        "На грузовике товары {value} разных получателей",
        "The truck carries goods for {value} different consignees",
    ),
    "trip_chapters": _E(
        "Distinct HS chapters on the truck.",
        "cargo_consolidation",
        "На грузовике товары {value} разных групп ТН ВЭД",
        "The truck carries goods of {value} different HS chapters",
    ),
    "trip_value_usd": _E(
        "Total customs value on the truck (USD).",
        "any",
        "Общая стоимость груза {value} долл. США",
        "The truck's load is worth {value} USD",
    ),
    "customs_value_log": _E(
        "Natural log of 1 + the item's customs value (USD).",
        "any",
        "Таможенная стоимость товара (лог.) {value}",
        "Item customs value (log) {value}",
    ),
    "duty_rate_pct": _E(
        "Import duty rate of the declared HS code (%); high duty, high incentive to cheat.",
        "misclassification",
        "Ставка пошлины {value}%",
        "Duty rate {value}%",
    ),
    "duty_at_stake_usd": _E(
        "Duty due on the declared value (USD): what a violation would cost the budget.",
        "any",
        "Пошлина под риском {value} долл. США",
        "{value} USD of duty at stake",
    ),
    "origin_country_code": _E(
        "Country of origin (categorical: 26 * letter1 + letter2 of the ISO code).",
        "false_origin",
        "Страна происхождения (код {value})",
        "Country of origin (code {value})",
    ),
    "dispatch_country_code": _E(
        "Country of dispatch (categorical, coded like the origin).",
        "reexport",
        "Страна отправления (код {value})",
        "Country of dispatch (code {value})",
    ),
    "destination_country_code": _E(
        "Country of destination (categorical, coded like the origin).",
        "transit_diversion",
        "Страна назначения (код {value})",
        "Country of destination (code {value})",
    ),
    "procedure_code": _E(
        "Customs procedure (categorical: 0 import, 1 transit, 2 EAEU internal).",
        "transit_diversion",
        "Таможенная процедура (код {value})",
        "Customs procedure (code {value})",
    ),
    "hs_chapter_code": _E(
        "HS chapter, the first two digits of the code (categorical).",
        "misclassification",
        "Группа ТН ВЭД {value}",
        "HS chapter {value}",
    ),
    "crossing_code": _E(
        "Border crossing (categorical: stable CRC-32 hash of its id).",
        "any",
        "Пункт пропуска (код {value})",
        "Border crossing (code {value})",
    ),
}


def entry_for(name: str) -> CatalogEntry:
    """The catalogue entry of a feature, including the extra categoricals a config adds."""
    if name in CATALOG:
        return CATALOG[name]
    if name.endswith("_code"):
        source = name.removesuffix("_code")
        return _E(
            f"Source column '{source}' (categorical: stable CRC-32 hash of its value).",
            "any",
            f"Признак источника «{source}» (код {{value}})",
            f"Source field '{source}' (code {{value}})",
        )
    raise KeyError(f"feature {name!r} is not in the catalogue")


def render_markdown() -> str:
    """``docs/features.md``: the catalogue as tables, one per family of the pipeline."""
    from features import pipeline

    families = [
        ("Value (price references)", pipeline.VALUE_FEATURES),
        ("Weight", pipeline.WEIGHT_FEATURES),
        ("Entity history", pipeline.ENTITY_FEATURES),
        ("Route and origin", pipeline.ROUTE_FEATURES),
        ("Behaviour and trip", pipeline.BEHAVIOUR_FEATURES),
        ("Goods", pipeline.GOODS_FEATURES),
        ("Categorical (integer codes)", pipeline.CATEGORICAL_FEATURES),
    ]
    lines = [_DOC_HEAD]
    for title, names in families:
        lines += [f"\n## {title}\n", "| feature | meaning | scheme | reason (ru) | reason (en) |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name in names:
            e = CATALOG[name]
            lines.append(
                f"| `{name}` | {e.meaning} | {SCHEMES[e.scheme]} | {e.reason_ru} | {e.reason_en} |"
            )
    lines.append(_DOC_TAIL)
    return "\n".join(lines) + "\n"


_DOC_HEAD = """# Features

Generated from `features/catalog.py` by `python -m features.catalog > docs/features.md`;
edit the catalogue, not this file. How the features are computed (point in time, history and
profile modes, the price references) is described in the docstrings of `features/pipeline.py`,
`features/history.py`, `features/reference.py` and `features/profiles.py`, and summarised at the
end of this page.

Every feature of a declaration at time t uses only what was known before t: declarations filed
strictly earlier, outcomes recorded strictly earlier, price references of earlier periods.
A reason text's `{value}` is the row's value of the feature."""

_DOC_TAIL = """
## How the numbers are made

- **Entity history** is additive state. Events (declarations filed; outcomes recorded) are
  counted per entity key strictly before each row's `declared_at` (the rows are walked once
  in time order per entity by a native pass, and each row reads its key's state as it was
  before its time: outcomes recorded strictly earlier, declarations filed strictly earlier),
  so items of one declaration never see each other. Windowed counts are the
  declarations between t - window and t. Outcomes count from their `recorded_at`; an
  outcome recorded before its own declaration, or more than `outcome_horizon_days` after it,
  is ignored, so a row's own result can never reach its features.
- **Violation rates** are (violations + k * prior) / (inspections + k) with k =
  `prior_strength`; the prior is the global rate as of the row's time, itself shrunk towards
  `prior_violation_rate`.
- **Price references** (`features.reference.UnitValueReference`) are refit at each period start
  (`reference_period`, monthly by default): a row in period P is compared with all rows of
  earlier periods, at the finest level with at least `reference_min_rows` rows (full HS x
  origin, 6 digits, 4 digits, chapter x origin, chapter from any origin). The median is exact
  (mean of the two middle values); the position is the share of past values strictly below.
- **Trips** (the `trip_*` features) are one truck (or a declaration without a truck) at one
  crossing on one calendar day; co-loaded items are known when the truck is scored.
- **Profile mode** (`features.profiles`) collapses the past into one synthetic event per key,
  keeps the last 30 days of events of the entities with windowed counts, the entity keys of the
  items of the last `outcome_horizon_days` (so late outcomes still reach their entities), and
  the past values behind the price reference of the cut-off's period. It refuses declarations
  before the cut-off and declarations in a later reference period; materialise a fresh profile
  at least once a period. History mode and profile mode give the same values (tested to 1e-9).
- **Reproducibility**: sums of floats (duty found, trip values) may be added in another order
  from run to run, so values agree to about 1e-12 relative, not always to the bit.
- **Categorical codes** are integers that never depend on the data seen: countries
  26 * letter1 + letter2, procedures their position in `risk.schemas.PROCEDURES`, HS chapters
  their number, crossings and extra source columns a CRC-32 hash modulo 2^20.
"""


if __name__ == "__main__":
    print(render_markdown(), end="")
