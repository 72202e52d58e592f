"""Validated ingest: profiles, formats, every quarantine reason, counts, atomic outputs."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import dataframely as dy
import numpy as np
import polars as pl
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from pipelines.ingest import (
    DECLARATIONS_FILE,
    OUTCOMES_FILE,
    QUARANTINE_FILE,
    IngestResult,
    available_profiles,
    currency_rates,
    ingest,
    load_profile,
    read_declarations,
    read_source,
)
from risk.commands import ingest as ingest_command
from risk.errors import InputError
from risk.schemas import DeclarationItem, InspectionOutcome, TruckArrival

DATA = Path(__file__).parents[1] / "data"
KCS_SAMPLE = DATA / "kcs_sample.csv"
KCS_ROWS = 300


def kcs_raw() -> pl.DataFrame:
    return pl.read_csv(KCS_SAMPLE, infer_schema=False)


def canonical_items(n: int = 60, seed: int = 3) -> pl.DataFrame:
    """Valid canonical items sampled from the schema, with Cyrillic text among them."""
    rng = np.random.default_rng(seed)
    overrides = {
        "origin_country": rng.choice(["CN", "KZ", "RU", "TR", "ZZ", "XA"], n).tolist(),
        "dispatch_country": rng.choice(np.array(["CN", "KZ", None], dtype=object), n).tolist(),
        "destination_country": rng.choice(["RU", "KZ", "BY"], n).tolist(),
        "hs_code": rng.choice(["8517120000", "0101", "847130", "6403990000"], n).tolist(),
        "currency": rng.choice(["USD", "CNY", "RUB", "KZT", "EUR"], n).tolist(),
        "goods_description": rng.choice(
            np.array(
                ['Телевизоры ЖК, 55"', "запчасти; б/у", "Ёлочные игрушки", None], dtype=object
            ),
            n,
        ).tolist(),
        "importer_id": rng.choice(["ТОО «Астана-Импорт»", "IMP-0001", "IMP-0002"], n).tolist(),
    }
    items = DeclarationItem.sample(n, generator=dy.random.Generator(seed=seed), overrides=overrides)
    # Blank text is read as missing, so the sample holds no empty strings.
    return items.with_columns(
        pl.when(pl.col(pl.String).str.len_bytes() > 0).then(pl.col(pl.String)).name.keep()
    )


def write(frame: pl.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.write_csv(path)
    elif path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_ndjson(path)
    return path


def with_cell(frame: pl.DataFrame, row: int, column: str, value: str | None) -> pl.DataFrame:
    """A copy of a text frame with one cell replaced (``row`` is 0-based)."""
    index = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(index == row).then(pl.lit(value, pl.String)).otherwise(pl.col(column)).alias(column)
    )


# ---------------------------------------------------------------- profiles


def test_shipped_profiles_load() -> None:
    assert {"canonical", "kcs"} <= set(available_profiles())
    kcs = load_profile("kcs")
    assert kcs.outcomes is not None
    assert "Declaration ID" in kcs.required_columns()
    assert load_profile("canonical").outcomes is None


def test_profile_by_path_with_units_and_decimal_comma(tmp_path: Path) -> None:
    profile = tmp_path / "tonnes.toml"
    profile.write_text(
        """
name = "tonnes"
csv_separator = ";"
decimal_comma = true
[declarations]
declaration_id = { source = "ДТ" }
item_no = { source = "N" }
declared_at = { source = "дата", formats = ["%d.%m.%Y"] }
crossing = { constant = "Zhaisan" }
importer_id = { source = "получатель" }
hs_code = { source = "ТН ВЭД" }
origin_country = { source = "страна" }
procedure = { source = "режим", values = { "ИМ40" = "import", "ТТ" = "transit" } }
net_mass_kg = { source = "нетто, т", factor = 1000.0 }
invoice_value = { source = "стоимость" }
currency = { source = "валюта", default = "RUB" }
""",
        encoding="utf-8",
    )
    source = tmp_path / "dt.csv"
    source.write_text(
        "ДТ;N;дата;получатель;ТН ВЭД;страна;режим;нетто, т;стоимость;валюта\n"
        "10101010/010125/0000001;1;01.02.2025;ООО «Ромашка»;8517120000;cn;ИМ40;1,5;1000,5;\n"
        "10101010/010125/0000002;1;02.02.2025;ООО «Ромашка»;0101;KZ;ТТ;0,25;10;USD\n",
        encoding="utf-8",
    )
    result = read_source(source, profile)
    assert result.rows_valid == 2
    items = result.declarations
    assert items["net_mass_kg"].to_list() == [1500.0, 250.0]
    assert items["invoice_value"].to_list() == [1000.5, 10.0]
    assert items["currency"].to_list() == ["RUB", "USD"]
    assert items["procedure"].cast(pl.String).to_list() == ["import", "transit"]
    assert items["origin_country"].to_list() == ["CN", "KZ"]
    assert items["importer_id"][0] == "ООО «Ромашка»"
    assert items["customs_value_usd"][0] == pytest.approx(1000.5 * currency_rates()["RUB"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[declarations]\ndeclaration_id = { source = "x" }', "leaves required field(s) unmapped"),
        ("[declarations]\nnot_a_field = { constant = 1 }", "unknown canonical field"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_invalid_profile_is_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        load_profile(path)


def test_profile_with_a_bad_constant_is_refused(tmp_path: Path) -> None:
    text = Path(load_profile.__module__.replace(".", "/")).parents[1] / "profiles" / "kcs.toml"
    body = text.read_text(encoding="utf-8").replace(
        'procedure = { constant = "import" }', 'procedure = { constant = "imports" }'
    )
    path = tmp_path / "typo.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match="procedure = 'imports'"):
        load_profile(path)


def test_unknown_profile_name_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="canonical.*kcs"):
        load_profile("nope")


# ---------------------------------------------------------------- the kcs profile


def test_kcs_sample_is_all_valid_with_outcomes() -> None:
    result = read_source(KCS_SAMPLE, "kcs")
    raw = kcs_raw()
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (KCS_ROWS, KCS_ROWS, 0)
    items = result.declarations
    DeclarationItem.validate(items.select(DeclarationItem.column_names()))
    assert items["declaration_id"].to_list() == raw["Declaration ID"].to_list()
    assert items["hs_code"].to_list() == raw["HS6 Code"].to_list()  # leading zeros kept
    assert items["hs_code"].str.starts_with("0").any()
    assert (items["item_no"] == 1).all()
    assert (items["destination_country"] == "KR").all()
    assert (items["currency"] == "KRW").all()
    assert items["consignor_id"].null_count() == raw["Seller ID"].null_count() > 0
    assert items["carrier_id"].null_count() == raw["Courier ID"].null_count() > 0
    assert items["src_process_type"].to_list() == raw["Process Type"].to_list()
    expected_usd = raw["Item Price"].cast(pl.Float64) * currency_rates()["KRW"]
    assert np.allclose(items["customs_value_usd"].to_numpy(), expected_usd.to_numpy())

    outcomes = result.outcomes
    assert outcomes is not None
    InspectionOutcome.validate(outcomes.select(InspectionOutcome.column_names()))
    fraud = raw["Fraud"] == "1"
    assert (outcomes["result"].cast(pl.String) == "other").to_list() == fraud.to_list()
    assert outcomes["inspected"].all() and (outcomes["selection"] == "random").all()
    # An outcome is known after the declaration, never at declaration time.
    assert (outcomes["recorded_at"] - items["declared_at"] == dt.timedelta(days=1)).all()


# One broken cell per row: (column, bad value, failed field, rule, words in the reason).
BREAKAGES = [
    ("Net Mass", "-5.0", "net_mass_kg", "negative", "negative value '-5.0'"),
    ("HS6 Code", "85A7", "hs_code", "malformed", "malformed HS code '85A7'"),
    ("HS6 Code", "851", "hs_code", "malformed", "malformed HS code '851'"),
    ("Date", "2020-13-45", "declared_at", "unparseable_date", "cannot parse '2020-13-45'"),
    ("Country of Origin", "ZY", "origin_country", "not_iso", "'ZY' is not an ISO"),
    ("Country of Departure", "UK", "dispatch_country", "not_iso", "'UK' is not an ISO"),
    ("Declaration ID", "", "declaration_id", "missing", "missing value"),
    ("Importer ID", "  ", "importer_id", "missing", "missing value"),
    ("Item Price", "12,5x", "invoice_value", "unparseable_number", "cannot parse '12,5x'"),
    ("Tax Rate", "-1", "duty_rate_pct", "negative", "negative value '-1'"),
    ("Net Mass", "inf", "net_mass_kg", "not_finite", "'inf' is not a finite number"),
    ("Fraud", "7", "outcome.result", "unknown_value", "unknown value '7' (expected one of: 0, 1)"),
]


@pytest.mark.parametrize(("column", "value", "field", "rule", "words"), BREAKAGES)
def test_each_hard_rule_quarantines_exactly_the_broken_row(
    tmp_path: Path, column: str, value: str, field: str, rule: str, words: str
) -> None:
    row = 41
    path = write(with_cell(kcs_raw(), row, column, value), tmp_path / "broken.csv")
    result = read_source(path, "kcs")
    assert (result.rows_valid, result.rows_quarantined) == (KCS_ROWS - 1, 1)
    bad = result.quarantine.row(0, named=True)
    assert bad["source_file"] == str(path)
    assert bad["source_row"] == row + 1  # 1-based data row
    assert (bad["field"], bad["rule"]) == (field, rule)
    assert words in bad["reason"] and bad["reason"].startswith(f"{field}: ")
    assert bad[column] == value  # the raw values travel along, as they were
    assert result.failure_counts == {f"{field}: {rule}": 1}
    assert result.outcomes is not None and result.outcomes.height == KCS_ROWS - 1
    key = kcs_raw()["Declaration ID"][row]
    assert key not in result.declarations["declaration_id"].to_list()


def test_a_row_with_several_problems_lists_them_all(tmp_path: Path) -> None:
    frame = with_cell(kcs_raw(), 5, "Net Mass", "-1")
    frame = with_cell(frame, 5, "Date", "yesterday")
    frame = with_cell(frame, 5, "HS6 Code", "x")
    result = read_source(write(frame, tmp_path / "many.csv"), "kcs")
    assert result.rows_quarantined == 1
    bad = result.quarantine.row(0, named=True)
    assert bad["field"] == "declared_at; hs_code; net_mass_kg"
    assert bad["rule"] == "unparseable_date; malformed; negative"
    assert bad["reason"].count("; ") == 2
    # The outcome's date comes from the same cell: one cause, one reason.
    assert "recorded_at" not in bad["reason"]


def test_duplicate_item_key_quarantines_every_copy(tmp_path: Path) -> None:
    frame = kcs_raw()
    frame = pl.concat([frame, frame[10:11]])
    result = read_source(write(frame, tmp_path / "dup.csv"), "kcs")
    assert result.rows_quarantined == 2
    assert result.quarantine["source_row"].to_list() == [11, KCS_ROWS + 1]
    assert set(result.quarantine["rule"]) == {"duplicate_key"}


def test_duplicates_across_files_are_found(tmp_path: Path) -> None:
    a = write(kcs_raw()[:100], tmp_path / "a.csv")
    b = write(kcs_raw()[99:150], tmp_path / "b.csv")
    result = read_source([a, b], "kcs")
    assert result.rows_in == 151
    assert result.quarantine.select("source_file", "source_row").rows() == [
        (str(a), 100),
        (str(b), 1),
    ]


@pytest.mark.parametrize(
    ("column", "value", "rule", "words"),
    [
        ("procedure", "smuggling", "unknown_value", "unknown value 'smuggling'"),
        ("currency", "XYZ", "unknown_currency", "unknown currency 'XYZ'"),
        ("item_no", "0", "below_minimum", "value '0' is below the minimum"),
        ("item_no", "1.5", "unparseable_integer", "cannot parse '1.5' as an integer"),
        ("importer_registered_on", "31/12/2020", "unparseable_date", "'31/12/2020'"),
        ("gross_mass_kg", "heavy", "unparseable_number", "cannot parse 'heavy'"),
        ("destination_country", "RUS", "not_iso", "'RUS' is not an ISO"),
    ],
)
def test_canonical_quarantine_reasons(
    tmp_path: Path, column: str, value: str, rule: str, words: str
) -> None:
    text = canonical_items().cast({c: pl.String for c in DeclarationItem.column_names()})
    path = write(with_cell(text, 7, column, value), tmp_path / "items.csv")
    result = read_source(path, "canonical")
    assert result.rows_quarantined == 1
    bad = result.quarantine.row(0, named=True)
    assert (bad["source_row"], bad["field"], bad["rule"]) == (8, column, rule)
    assert words in bad["reason"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    broken=st.dictionaries(
        st.integers(0, KCS_ROWS - 1),
        st.sampled_from([(c, v) for c, v, *_ in BREAKAGES]),
        max_size=25,
    )
)
def test_rows_in_equals_valid_plus_quarantined(
    tmp_path: Path, broken: dict[int, tuple[str, str]]
) -> None:
    frame = kcs_raw()
    for row, (column, value) in broken.items():
        frame = with_cell(frame, row, column, value)
    result = read_source(write(frame, tmp_path / "mixed.csv"), "kcs")
    assert result.rows_in == result.rows_valid + result.rows_quarantined == KCS_ROWS
    assert sorted(result.quarantine["source_row"].to_list()) == sorted(r + 1 for r in broken)
    assert result.outcomes is not None and result.outcomes.height == result.rows_valid


def test_counts_invariant_is_enforced() -> None:
    empty = pl.DataFrame()
    with pytest.raises(AssertionError, match="rows in 3"):
        IngestResult(empty, None, empty, rows_in=3, failure_counts={}, profile="x", sources=[])


# ---------------------------------------------------------------- formats, text, encodings


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_canonical_round_trip_in_every_format(tmp_path: Path, suffix: str) -> None:
    items = canonical_items()
    result = read_declarations(write(items, tmp_path / f"items{suffix}"), "canonical")
    assert result.rows_quarantined == 0
    assert_frame_equal(result.declarations.drop("soft_flags"), items)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".ndjson"])
def test_kcs_in_every_format(tmp_path: Path, suffix: str) -> None:
    result = read_source(write(kcs_raw(), tmp_path / f"kcs{suffix}"), "kcs")
    assert result.rows_valid == KCS_ROWS
    assert result.declarations["hs_code"].to_list() == kcs_raw()["HS6 Code"].to_list()


def test_typed_parquet_sources_are_cast(tmp_path: Path) -> None:
    items = canonical_items(20).with_columns(
        pl.col("item_no").cast(pl.Int64),
        pl.col("declared_at").dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Almaty"),
        pl.col("procedure").cast(pl.String),
    )
    result = read_source(write(items, tmp_path / "typed.parquet"), "canonical")
    assert result.rows_valid == 20
    assert (
        result.declarations["declared_at"].to_list() == canonical_items(20)["declared_at"].to_list()
    )


def test_cyrillic_survives_ingest_and_quarantine(tmp_path: Path) -> None:
    items = canonical_items()
    text = items.cast({c: pl.String for c in items.columns})
    text = with_cell(text, 0, "hs_code", "ТНВЭД")
    out = tmp_path / "out"
    result = ingest(write(text, tmp_path / "ru.csv"), "canonical", out)
    written = pl.read_parquet(out / DECLARATIONS_FILE)
    assert written["goods_description"].to_list() == items["goods_description"][1:].to_list()
    assert "Ёлочные игрушки" in written["goods_description"].to_list()
    quarantined = pl.read_parquet(out / QUARANTINE_FILE)
    assert quarantined["reason"][0] == (
        "hs_code: malformed HS code 'ТНВЭД' (expected ^[0-9]{4,10}$: 4 to 10 digits)"
    )
    assert quarantined["importer_id"][0] == items["importer_id"][0]
    assert result.rows_valid == items.height - 1


def test_wrong_encoding_gives_one_clear_message(tmp_path: Path) -> None:
    items = canonical_items()
    path = tmp_path / "cp1251.csv"
    path.write_bytes(items.write_csv().encode("cp1251"))
    with pytest.raises(InputError, match=r"not valid UTF-8 .*--encoding cp1251"):
        read_source(path, "canonical")
    result = read_source(path, "canonical", encoding="cp1251")
    assert result.declarations["importer_id"].to_list() == items["importer_id"].to_list()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.csv", "file not found"),
        (lambda p: (p / "empty.csv").touch() or p / "empty.csv", "empty"),
        (lambda p: (p / "x.xlsx").touch() or p / "x.xlsx", "unsupported file type '.xlsx'"),
        (
            lambda p: (p / "bad.parquet").write_bytes(b"PAR1 not really") and p / "bad.parquet",
            "cannot read as parquet",
        ),
    ],
)
def test_unreadable_files_give_one_clear_message(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        read_source(make(tmp_path), "kcs")


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write(kcs_raw().drop("HS6 Code", "Fraud"), tmp_path / "short.csv")
    with pytest.raises(
        InputError,
        match=r"missing required column\(s\) 'HS6 Code', 'Fraud' "
        r"for profile 'kcs'",
    ):
        read_source(path, "kcs")


# ---------------------------------------------------------------- soft rules


def test_soft_rules_mark_rows_and_keep_them(tmp_path: Path) -> None:
    items = canonical_items(6).with_columns(
        net_mass_kg=pl.Series([0.0, 10.0, 10.0, 10.0, 10.0, 10.0]),
        gross_mass_kg=pl.Series([1.0, 5.0, 12.0, 12.0, 12.0, 12.0]),
        invoice_value=pl.Series([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]),
        customs_value_usd=pl.Series([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]),
        crossing=pl.lit("A"),
        truck_id=pl.Series(["T1", "T2", "T3", "T4", "T4", None]),
        declared_at=pl.lit(dt.datetime(2025, 10, 1)),
    )
    arrivals = TruckArrival.validate(
        pl.DataFrame(
            {
                "crossing": ["A", "A", "A"],
                "truck_id": ["T3", "T4", "T1"],
                "arrived_at": [dt.datetime(2025, 10, 1, 6)] * 3,
                "weighbridge_kg": [12.5, 30.0, None],
            }
        ).with_columns(pl.col("arrived_at").cast(pl.Datetime("us"))),
    )
    result = read_source(write(items, tmp_path / "odd.parquet"), "canonical", arrivals=arrivals)
    assert result.rows_valid == 6
    assert result.declarations["soft_flags"].to_list() == [
        ["zero_mass"],
        ["gross_below_net"],
        ["zero_value"],  # 12 declared vs 12.5 weighed: within 10 %
        ["weight_far_from_weighbridge"],  # 24 declared vs 30 weighed on one truck
        ["weight_far_from_weighbridge"],
        [],
    ]


# ---------------------------------------------------------------- writing and the CLI


def test_ingest_writes_all_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ingest(KCS_SAMPLE, "kcs", out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [DECLARATIONS_FILE, OUTCOMES_FILE, QUARANTINE_FILE]
    )
    assert_frame_equal(pl.read_parquet(out / DECLARATIONS_FILE), result.declarations)
    assert result.outcomes is not None
    assert_frame_equal(pl.read_parquet(out / OUTCOMES_FILE), result.outcomes)
    assert pl.read_parquet(out / QUARANTINE_FILE).height == 0
    # A later canonical ingest into the same folder leaves no stale outcomes behind.
    ingest(write(canonical_items(), tmp_path / "c.parquet"), "canonical", out)
    assert not (out / OUTCOMES_FILE).exists()


def test_a_failure_mid_write_leaves_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = pl.DataFrame.write_parquet
    calls = []

    def failing_write(self: pl.DataFrame, *args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing_write)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        ingest(KCS_SAMPLE, "kcs", out)
    assert len(calls) == 2
    assert list(out.iterdir()) == []  # neither finished files nor temporary parts


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("ingest")(ingest_command.command)
    app.command("noop")(lambda: None)  # a second command keeps 'ingest' a subcommand
    return app


def test_cli_prints_the_summary(tmp_path: Path) -> None:
    broken = write(with_cell(kcs_raw(), 3, "HS6 Code", "12AB"), tmp_path / "b.csv")
    run = CliRunner().invoke(
        _cli(), ["ingest", "--profile", "kcs", str(broken), "--out", str(tmp_path / "o")]
    )
    assert run.exit_code == 0, run.output
    assert "rows in 300 = valid 299 + quarantined 1" in run.output
    assert "hs_code: malformed" in run.output
    assert str(tmp_path / "o" / QUARANTINE_FILE) in run.output


def test_cli_default_output_folder_is_in_the_data_dir(tmp_path: Path) -> None:
    from risk.settings import get_settings

    run = CliRunner().invoke(_cli(), ["ingest", "--profile", "kcs", str(KCS_SAMPLE)])
    assert run.exit_code == 0, run.output
    assert (get_settings().data_dir / "ingest" / DECLARATIONS_FILE).is_file()


def test_cli_missing_column_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    path = write(kcs_raw().drop("Net Mass"), tmp_path / "short.csv")
    run = CliRunner().invoke(_cli(), ["ingest", "--profile", "kcs", str(path)])
    assert run.exit_code == 2
    assert "missing required column(s) 'Net Mass' for profile 'kcs'" in run.output
    assert "Traceback" not in run.output


def test_cli_weighbridge_rule_runs_with_arrivals(tmp_path: Path) -> None:
    items = canonical_items(2).with_columns(
        crossing=pl.lit("A"),
        truck_id=pl.lit("T1"),
        gross_mass_kg=pl.lit(1000.0),
        net_mass_kg=pl.lit(900.0),
        declared_at=pl.lit(dt.datetime(2025, 10, 1)),
    )
    arrivals = pl.DataFrame(
        {
            "crossing": ["A"],
            "truck_id": ["T1"],
            "arrived_at": [dt.datetime(2025, 10, 1, 8)],
            "weighbridge_kg": [5000.0],
        }
    )
    source = write(items, tmp_path / "items.parquet")
    arrivals_path = write(arrivals, tmp_path / "arrivals.parquet")
    out = tmp_path / "o"
    run = CliRunner().invoke(
        _cli(), ["ingest", str(source), "--arrivals", str(arrivals_path), "--out", str(out)]
    )
    assert run.exit_code == 0, run.output
    flags = pl.read_parquet(out / DECLARATIONS_FILE)["soft_flags"].to_list()
    assert flags == [["weight_far_from_weighbridge"]] * 2
    missing = CliRunner().invoke(_cli(), ["ingest", str(source), "--arrivals", "nope.parquet"])
    assert missing.exit_code == 2
    assert "arrivals file not found: nope.parquet" in missing.output


def test_source_columns_named_like_quarantine_columns_are_kept(tmp_path: Path) -> None:
    raw = kcs_raw().rename({"Declaration ID": "source_row"}).with_columns(reason=pl.lit("x"))
    profile = tmp_path / "clash.toml"
    text = (DATA.parents[1] / "pipelines" / "profiles" / "kcs.toml").read_text(encoding="utf-8")
    profile.write_text(text.replace('"Declaration ID"', '"source_row"'), encoding="utf-8")
    path = write(with_cell(raw, 2, "source_row", ""), tmp_path / "clash.csv")
    result = read_source(path, profile)
    bad = result.quarantine.row(0, named=True)
    assert (bad["source_row"], bad["field"], bad["raw:source_row"]) == (3, "declaration_id", "")
    assert bad["raw:reason"] == "x"


def test_header_only_file_gives_empty_outputs(tmp_path: Path) -> None:
    path = write(kcs_raw().clear(), tmp_path / "header.csv")
    result = ingest(path, "kcs", tmp_path / "out")
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (0, 0, 0)
    assert pl.read_parquet(tmp_path / "out" / DECLARATIONS_FILE).height == 0


def test_cli_unwritable_output_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    run = CliRunner().invoke(
        _cli(), ["ingest", "-p", "kcs", str(KCS_SAMPLE), "--out", str(blocker)]
    )
    assert run.exit_code == 2
    assert f"cannot write the outputs to {blocker}" in run.output


def test_files_with_and_without_an_optional_column_are_read_together(tmp_path: Path) -> None:
    items = canonical_items(10)
    text = items.cast({c: pl.String for c in items.columns})
    full = write(with_cell(text[:5], 1, "gross_mass_kg", "heavy"), tmp_path / "full.csv")
    short = write(text[5:].drop("gross_mass_kg", "quantity"), tmp_path / "short.csv")
    result = read_source([short, full], "canonical")
    assert (result.rows_in, result.rows_valid) == (10, 9)
    assert result.declarations["gross_mass_kg"][:5].is_null().all()
    assert result.quarantine.select("source_file", "source_row", "rule").row(0) == (
        str(full),
        2,
        "unparseable_number",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-01", dt.datetime(2025, 10, 1)),
        ("2025-10-01 10:00:00", dt.datetime(2025, 10, 1, 10)),
        ("2025-10-01T10:00:00.25", dt.datetime(2025, 10, 1, 10, 0, 0, 250000)),
        ("2025-10-01T10:00:00Z", dt.datetime(2025, 10, 1, 10)),
        ("2025-10-01T10:00:00+05:00", dt.datetime(2025, 10, 1, 5)),  # Almaty time -> UTC
    ],
)
def test_default_date_formats_give_naive_utc(
    tmp_path: Path, text: str, expected: dt.datetime
) -> None:
    items = canonical_items(3)
    frame = with_cell(items.cast({c: pl.String for c in items.columns}), 0, "declared_at", text)
    result = read_source(write(frame, tmp_path / "t.csv"), "canonical")
    assert result.declarations["declared_at"][0] == expected
