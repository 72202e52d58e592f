"""The synthetic traffic generator: schemas, determinism, scheme rates and signs, selectivity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.generate import (
    LAYOUT,
    SCHEMES,
    Traffic,
    TrafficConfig,
    generate_traffic,
    realised_scheme_rates,
    write_traffic,
)
from pipelines.synthetic.reference import CURRENCIES, FALSE_ORIGINS, hs_reference, usd_per_unit
from risk.cli import app
from risk.schemas import DeclarationItem, GroundTruth, InspectionOutcome, TruckArrival

CONFIG = TrafficConfig(history_items=30_000, queue_trucks=600)
SCHEMAS = {
    "declarations": DeclarationItem,
    "arrivals": TruckArrival,
    "outcomes": InspectionOutcome,
    "ground_truth": GroundTruth,
    "queue_declarations": DeclarationItem,
    "queue_arrivals": TruckArrival,
}
KEYS = ["declaration_id", "item_no"]


def _num(value: object) -> float:
    """A Polars scalar as a number (fails loudly on None, e.g. the mean of nothing)."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    assert isinstance(value, int | float), f"expected a number, got {value!r}"
    return float(value)


@pytest.fixture(scope="session")
def traffic() -> Traffic:
    return generate_traffic(CONFIG)


@pytest.fixture(scope="session")
def items(traffic: Traffic) -> pl.DataFrame:
    """History items with their truth, outcome, truck visit and weighing, reference price."""
    ref = hs_reference().frame.select("hs_code", "usd_per_kg", "cover_hs_code")
    outcomes = traffic.outcomes.select(*KEYS, "inspected", "selection", "result", "lane",
                                       "extra_duty_usd", "recorded_at")  # fmt: skip
    visits = traffic.arrivals.sort("arrived_at").with_columns(
        pl.format("{}@{}", "truck_id", "arrived_at").alias("visit")
    )
    return (
        traffic.declarations.join(traffic.history_truth, on=KEYS, how="left")
        .join(outcomes, on=KEYS, how="left")
        .sort("declared_at")
        .join_asof(
            visits,
            left_on="declared_at",
            right_on="arrived_at",
            by=["truck_id", "crossing"],
            strategy="forward",
        )  # fmt: skip
        .join(ref, on="hs_code", how="left")
        .with_columns(
            (pl.col("customs_value_usd") / pl.col("net_mass_kg") / pl.col("usd_per_kg")).alias(
                "price_ratio"
            ),
            (pl.col("declared_at").dt.date() - pl.col("importer_registered_on"))
            .dt.total_days()
            .alias("importer_age_days"),
            pl.col("gross_mass_kg").sum().over("visit").alias("truck_declared_gross"),
        )
    )


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_every_frame_passes_its_schema(traffic: Traffic, name: str) -> None:
    frame = getattr(traffic, name)
    assert frame.height > 0
    assert SCHEMAS[name].is_valid(frame)
    assert frame.columns == SCHEMAS[name].column_names()


def test_keys_are_unique_and_truth_covers_every_item(traffic: Traffic) -> None:
    both = pl.concat([traffic.declarations.select(KEYS), traffic.queue_declarations.select(KEYS)])
    assert both.is_unique().all()
    assert both.equals(traffic.ground_truth.select(KEYS))
    assert traffic.outcomes.select(KEYS).equals(traffic.declarations.select(KEYS))
    assert traffic.arrivals.select("truck_id", "arrived_at").is_unique().all()
    assert traffic.queue_arrivals["truck_id"].is_unique().all(), "each truck queues once"
    assert set(traffic.declarations["truck_id"]) == set(traffic.arrivals["truck_id"])
    assert set(traffic.queue_declarations["truck_id"]) == set(traffic.queue_arrivals["truck_id"])


def test_duty_evaded_exactly_for_violations(traffic: Traffic) -> None:
    truth = traffic.ground_truth
    violation = truth["scheme"] != "clean"
    assert (truth.filter(violation)["duty_evaded_usd"] > 0).all()
    assert (truth.filter(~violation)["duty_evaded_usd"] == 0).all()


def test_history_precedes_the_queue_and_today(traffic: Traffic) -> None:
    as_of = pl.datetime(CONFIG.as_of.year, CONFIG.as_of.month, CONFIG.as_of.day)
    queue_start = traffic.queue_arrivals["arrived_at"].min()
    assert _num(traffic.arrivals["arrived_at"].max()) < _num(queue_start)
    assert traffic.queue_arrivals.select((pl.col("arrived_at") < as_of).all()).item()
    assert traffic.outcomes.select((pl.col("recorded_at") <= as_of).all()).item()
    assert traffic.queue_arrivals.height == CONFIG.queue_trucks


def test_trucks_are_stable_vehicles_resting_between_visits(traffic: Traffic) -> None:
    visits = pl.concat([traffic.arrivals, traffic.queue_arrivals]).sort("truck_id", "arrived_at")
    gaps = visits.select(pl.col("arrived_at").diff().over("truck_id").drop_nulls())
    assert _num(gaps.to_series().min()) >= 4 * 86_400
    assert _num(visits.group_by("truck_id").len()["len"].max()) > 1, "trucks come back"
    plates = pl.concat([traffic.declarations, traffic.queue_declarations]).group_by("truck_id")
    assert (plates.agg(pl.col("vehicle_plate").n_unique())["vehicle_plate"] == 1).all()
    queue_trucks = traffic.queue_arrivals["truck_id"].implode()
    assert _num(traffic.arrivals["truck_id"].is_in(queue_trucks).mean()) > 0


@pytest.mark.parametrize("period", ["history", "queue"])
def test_each_declaration_meets_its_truck_at_the_crossing_within_hours(
    traffic: Traffic, period: str
) -> None:
    """What ingest and features do: nearest arrival of the truck at the crossing in time."""
    declarations = traffic.declarations if period == "history" else traffic.queue_declarations
    arrivals = traffic.arrivals if period == "history" else traffic.queue_arrivals
    papers = declarations.unique("declaration_id").sort("declared_at")
    matched = papers.join_asof(
        arrivals.sort("arrived_at"),
        left_on="declared_at",
        right_on="arrived_at",
        by=["truck_id", "crossing"],
        strategy="forward",
    )
    lead = (matched["arrived_at"] - matched["declared_at"]).dt.total_hours()
    assert lead.null_count() == 0
    assert _num(lead.min()) >= 0 and _num(lead.max()) <= 12
    # The papers of one visit are lodged together, on one day (features' trip = truck + day).
    days = matched.group_by("truck_id", "arrived_at").agg(
        pl.col("declared_at").dt.date().n_unique()
    )
    assert (days["declared_at"] == 1).all()


def test_values_follow_the_fixed_currency_rates(traffic: Traffic) -> None:
    rates = dict(zip(CURRENCIES, usd_per_unit(), strict=True))
    frame = traffic.declarations.with_columns(
        pl.col("currency").replace_strict(rates, return_dtype=pl.Float64).alias("rate")
    )
    gap = (frame["invoice_value"] * frame["rate"] - frame["customs_value_usd"]).abs()
    assert _num(gap.max()) <= 0.01
    assert set(frame["currency"]) == set(rates)


def test_masses_and_registration_dates_are_plausible(items: pl.DataFrame) -> None:
    clean = items.filter(pl.col("scheme") == "clean")
    below = _num((clean["gross_mass_kg"] < clean["net_mass_kg"]).mean())
    assert 0 < below < 0.01  # honest slips exist, but rarely
    assert (items["importer_age_days"].drop_nulls() >= 0).all()
    honest_trucks = items.filter(pl.col("scheme").eq("clean").all().over("visit"))
    ratio = (honest_trucks["weighbridge_kg"] / honest_trucks["truck_declared_gross"]).drop_nulls()
    assert _num(ratio.median()) == pytest.approx(1.0, abs=0.01)
    assert _num(ratio.quantile(0.9)) < 1.05


@pytest.mark.parametrize("scheme", SCHEMES)
def test_realised_scheme_rates_are_close_to_configured(traffic: Traffic, scheme: str) -> None:
    realised = realised_scheme_rates(traffic.history_truth)[scheme]
    assert realised == pytest.approx(CONFIG.scheme_rates[scheme], rel=0.2, abs=0.001)


def test_scheme_rates_can_be_overridden() -> None:
    config = TrafficConfig(
        history_items=15_000,
        queue_trucks=100,
        scheme_rates={"undervaluation": 0.08, "splitting": 0},
    )
    rates = realised_scheme_rates(generate_traffic(config).history_truth)
    assert rates["undervaluation"] == pytest.approx(0.08, rel=0.05)
    assert rates["splitting"] == 0
    assert rates["reexport"] == pytest.approx(config.scheme_rates["reexport"], rel=0.2)


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        TrafficConfig(scheme_rates={"smuggling": 0.1})


def _of(items: pl.DataFrame, scheme: str) -> pl.DataFrame:
    chosen = items.filter(pl.col("scheme") == scheme)
    assert chosen.height > 0
    return chosen


def _clean(items: pl.DataFrame) -> pl.DataFrame:
    return items.filter(pl.col("scheme") == "clean")


def test_undervalued_items_are_cheap_for_their_code(items: pl.DataFrame) -> None:
    under = _of(items, "undervaluation").join(
        _clean(items).group_by("hs_code").agg(pl.col("price_ratio").median().alias("clean_ratio")),
        on="hs_code",
    )
    assert _num((under["price_ratio"] / under["clean_ratio"]).median()) < 0.5


def test_reexport_is_chinese_goods_via_kazakhstan_to_young_buyers(items: pl.DataFrame) -> None:
    reexport = _of(items, "reexport")
    assert (reexport["origin_country"] == "CN").all()
    assert (reexport["dispatch_country"] == "KZ").all()
    assert (reexport["procedure"] == "eaeu_internal").all()
    assert reexport["consignor_id"].drop_nulls().str.starts_with("KZ-").all()
    clean = _clean(items)
    assert _num(reexport["importer_age_days"].median()) < 120
    assert _num(clean["importer_age_days"].median()) > 120
    assert _num(reexport["price_ratio"].median()) < 0.8 * _num(clean["price_ratio"].median())


def test_cargo_trucks_carry_many_small_consignees_and_weigh_more(items: pl.DataFrame) -> None:
    cargo = _of(items, "cargo_consolidation")
    trucks = cargo.group_by("visit").agg(
        pl.col("declaration_id").n_unique().alias("declarations"),
        pl.col("importer_id").n_unique().alias("importers"),
        (pl.col("weighbridge_kg").first() / pl.col("gross_mass_kg").sum()).alias("weight_gap"),
    )
    assert _num(trucks["declarations"].min()) >= 12
    assert _num(trucks["importers"].median()) >= 8
    assert _num(trucks["weight_gap"].drop_nulls().min()) > 1.1
    assert _num(cargo["consignor_id"].is_null().mean()) > 0.2
    assert _num(cargo["quantity"].is_null().mean()) > 0.2


def test_diverted_transit_is_declared_to_third_countries(items: pl.DataFrame) -> None:
    diverted = _of(items, "transit_diversion")
    assert (diverted["procedure"] == "transit").all()
    assert not diverted["destination_country"].is_in(["RU", "KZ", "BY", "KG", "AM"]).any()


def test_misclassified_goods_sit_under_lower_duty_cover_codes(items: pl.DataFrame) -> None:
    covers = set(hs_reference().frame["cover_hs_code"].drop_nulls())
    misclassified = _of(items, "misclassification")
    assert misclassified["hs_code"].is_in(sorted(covers)).all()
    # Some descriptions still name the true goods: text and code disagree.
    own = hs_reference().frame.select("hs_code", pl.col("description_ru").alias("own_words"))
    wording = misclassified.join(own, on="hs_code", how="left")
    mismatch = wording.select(~pl.col("goods_description").str.starts_with(pl.col("own_words")))
    assert 0.1 < _num(mismatch.to_series().mean()) < 0.6


def test_false_origin_claims_a_cheaper_origin(items: pl.DataFrame) -> None:
    false = _of(items, "false_origin")
    assert false["origin_country"].is_in(list(FALSE_ORIGINS)).all()
    full_rate = false.join(
        hs_reference().frame.select("hs_code", pl.col("duty_rate_pct").alias("full_rate")),
        on="hs_code",
    )
    assert (full_rate["duty_rate_pct"] < full_rate["full_rate"]).all()


def test_one_day_firms_are_days_old(items: pl.DataFrame) -> None:
    firms = _of(items, "one_day_firm")
    first = firms.group_by("importer_id").agg(pl.col("importer_age_days").min())
    assert _num(first["importer_age_days"].max()) <= 20
    others = items.filter(pl.col("importer_id").is_in(firms["importer_id"].implode()))
    assert (others["scheme"] == "one_day_firm").all(), "a one-day firm does nothing else"


def test_misdeclared_weight_is_far_from_the_weighbridge(items: pl.DataFrame) -> None:
    heavy = _of(items, "weight_misdeclaration").drop_nulls("weighbridge_kg")
    assert _num((heavy["weighbridge_kg"] / heavy["truck_declared_gross"]).min()) > 1.15


def test_split_declarations_stay_just_under_the_threshold(items: pl.DataFrame) -> None:
    split = _of(items, "splitting")
    per_declaration = split.group_by("declaration_id", "visit").agg(
        pl.col("customs_value_usd").sum(), pl.col("consignor_id").first()
    )
    threshold = CONFIG.splitting_threshold_usd
    assert _num(per_declaration["customs_value_usd"].max()) < threshold
    assert _num(per_declaration["customs_value_usd"].min()) > 0.8 * threshold
    per_truck = per_declaration.group_by("visit").agg(
        pl.len(), pl.col("consignor_id").drop_nulls().n_unique().alias("consignors")
    )
    assert _num(per_truck["len"].min()) >= 8
    assert (per_truck["consignors"] == 1).all()


def test_results_exist_only_for_inspected_items_and_match_the_truth(items: pl.DataFrame) -> None:
    inspected = items.filter(pl.col("inspected"))
    uninspected = items.filter(~pl.col("inspected"))
    assert uninspected["result"].is_null().all()
    assert uninspected["extra_duty_usd"].is_null().all()
    assert (uninspected["selection"] == "none").all()
    assert (uninspected["lane"] == "green").all()
    assert inspected["result"].is_not_null().all()
    found = inspected.filter(pl.col("result") != "clean")
    assert (found["result"].cast(pl.String) == found["scheme"].cast(pl.String)).all()
    assert (found["extra_duty_usd"] > 0).all()
    assert (inspected.filter(pl.col("scheme") == "clean")["result"] == "clean").all()
    missed = inspected.filter((pl.col("scheme") != "clean") & (pl.col("result") == "clean"))
    assert 0 < missed.height < 0.5 * inspected.filter(pl.col("scheme") != "clean").height
    assert (items["recorded_at"] > items["declared_at"]).all()


def test_selection_follows_old_rules_and_a_random_share(
    traffic: Traffic, items: pl.DataFrame
) -> None:
    per_declaration = traffic.outcomes.unique("declaration_id", keep="first")
    random_share = _num((per_declaration["selection"] == "random").mean())
    assert random_share == pytest.approx(CONFIG.random_inspection_share, abs=0.01)
    assert (per_declaration["selection"] == "rule").mean() == pytest.approx(
        CONFIG.rule_inspection_share, abs=0.01
    )

    def hit_rate(selection: str) -> float:
        red = items.filter((pl.col("selection") == selection) & (pl.col("lane") == "red"))
        return _num((red["result"] != "clean").mean())

    assert hit_rate("rule") > hit_rate("random")
    # Selection bias: fraud outside what was inspected stays unlabelled.
    fraud = items.filter(pl.col("scheme") != "clean")
    assert _num(fraud["result"].is_null().mean()) > 0.5


def test_track_records_carry_from_history_into_the_queue(traffic: Traffic) -> None:
    seen = traffic.declarations["importer_id"].unique().implode()
    queue = traffic.queue_declarations
    assert _num(queue["importer_id"].is_in(seen).mean()) > 0.5
    truth = traffic.history_truth.join(traffic.declarations.select(*KEYS, "importer_id"), on=KEYS)
    rates = truth.group_by("importer_id").agg(
        pl.len(), (pl.col("scheme") != "clean").mean().alias("fraud")
    )
    busy = rates.filter(pl.col("len") >= 30)
    assert _num(busy["fraud"].quantile(0.95)) > 3 * _num(busy["fraud"].median())


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_cli_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    runner = CliRunner()
    small = ["--items", "3000", "--queue-trucks", "80"]
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        result = runner.invoke(
            app, ["generate", "--seed", seed, *small, "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
    first, second, other = (_files(tmp_path / n) for n in "abc")
    assert set(first) == {*LAYOUT.values(), "manifest.json"}
    assert first == second
    assert all(first[name] != other[name] for name in LAYOUT.values())
    assert "undervaluation" in result.output


def test_cli_refuses_a_bad_scheme_rate(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["generate", "--scheme-rate", "undervaluation", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "NAME=RATE" in result.output


def test_write_traffic_writes_the_layout_and_a_manifest(traffic: Traffic, tmp_path: Path) -> None:
    paths = write_traffic(traffic, tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in paths.values()} == {
        *LAYOUT.values(),
        "manifest.json",
    }
    assert pl.read_parquet(paths["queue_declarations"]).equals(traffic.queue_declarations)
    manifest = json.loads(paths["manifest"].read_text(encoding="utf-8"))
    assert manifest["seed"] == CONFIG.seed
    assert manifest["config"]["history_items"] == CONFIG.history_items
    assert manifest["counts"]["history/declarations.parquet"] == traffic.declarations.height
    rates = manifest["realised_scheme_rates"]["history"]
    assert rates == realised_scheme_rates(traffic.history_truth)
    assert not list(tmp_path.rglob("*.part")), "no temporary file left behind"
