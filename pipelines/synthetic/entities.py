"""The traders and vehicles behind the traffic, with stable identities and track records.

Risk is a trait of an entity, not of a row: a few importers, brokers and carriers are
persistently risky and attract most schemes, so track-record features have something to find.
New importers are riskier on average, as DOMAIN.md says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.synthetic.reference import COUNTRIES, COUNTRY_INDEX, GROUPS, hs_reference
from pipelines.synthetic.sampling import weighted_choice

US_PER_DAY = 86_400_000_000
# Selection weight of a risky entity relative to an honest one, by tier (0 honest, 1, 2).
IMPORTER_RISK = np.array([1.0, 6.0, 30.0])
BROKER_RISK = np.array([1.0, 4.0])
CARRIER_RISK = np.array([1.0, 4.0])
# Importer kinds: regular companies, marketplace sellers (cargo), and the firms schemes create.
REGULAR, SELLER, ONE_DAY_FIRM, NOMINEE, SPLITTER = range(5)
# Countries that sell (dispatch) goods to the crossings, with the share of consignors.
CONSIGNOR_COUNTRIES = {
    "CN": 40, "KZ": 18, "TR": 8, "UZ": 5, "DE": 4, "KR": 4, "JP": 2, "IT": 2, "PL": 2,
    "IN": 2, "VN": 2, "US": 1, "BY": 2, "KG": 3, "AE": 3, "TW": 1, "GE": 1, "IR": 1, "FR": 1,
}  # fmt: skip
CYRILLIC_PLATE_LETTERS = np.array(list("АВЕКМНОРСТУХ"))
LATIN_PLATE_LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
KZ_REGIONS = np.array([f"{r:02d}" for r in range(1, 21)])
RU_REGIONS = np.array(["02", "16", "22", "45", "54", "55", "56", "63", "74", "102", "174", "156"])


@dataclass
class Entities:
    """Entity attributes as arrays indexed by entity number. Importers grow as schemes create
    one-day firms and nominees; everything else is fixed for the whole run."""

    imp_kind: np.ndarray
    imp_tier: np.ndarray
    imp_activity: np.ndarray
    imp_group: np.ndarray
    imp_active_from_us: np.ndarray
    imp_registered_day: np.ndarray  # days since 1970-01-01
    imp_registration_known: np.ndarray
    brk_tier: np.ndarray
    brk_activity: np.ndarray
    cns_country: np.ndarray
    cns_activity: np.ndarray
    cns_nominee: np.ndarray
    car_tier: np.ndarray
    car_activity: np.ndarray
    veh_carrier: np.ndarray
    veh_activity: np.ndarray
    veh_plate: pl.Series
    veh_home: np.ndarray  # home crossing number (modulo the number of crossings)
    veh_last_visit_us: np.ndarray  # latest arrival so far, to rest trucks between visits

    def add_importers(
        self,
        *,
        kind: int,
        first_seen_us: np.ndarray,
        registered_day: np.ndarray,
        group: np.ndarray,
    ) -> np.ndarray:
        """Append new importers (firms a scheme creates) and return their numbers."""
        n = len(first_seen_us)
        start = len(self.imp_kind)
        self.imp_kind = np.concatenate([self.imp_kind, np.full(n, kind)])
        self.imp_tier = np.concatenate([self.imp_tier, np.full(n, 2)])
        self.imp_activity = np.concatenate([self.imp_activity, np.zeros(n)])
        self.imp_group = np.concatenate([self.imp_group, group])
        self.imp_active_from_us = np.concatenate([self.imp_active_from_us, first_seen_us])
        self.imp_registered_day = np.concatenate([self.imp_registered_day, registered_day])
        self.imp_registration_known = np.concatenate(
            [self.imp_registration_known, np.ones(n, dtype=bool)]
        )
        return np.arange(start, start + n)


def importer_ids(numbers: np.ndarray) -> pl.Series:
    """Ten-digit, INN-like ids: a fixed bijection of the importer number (unique, stable)."""
    modulus = 9_000_000_000
    scrambled = (numbers.astype(np.int64) * 2_654_435_761 + 1_234_567) % modulus
    return pl.Series(values=1_000_000_000 + scrambled).cast(pl.String)


def build_entities(
    rng: np.random.Generator,
    *,
    history_items: int,
    history_trips: int,
    queue_trucks: int,
    start_us: int,
    end_us: int,
    crossing_shares: np.ndarray,
) -> Entities:
    """Draw the stable population of importers, brokers, consignors, carriers and vehicles."""
    ref = hs_reference()
    group_weight = np.bincount(ref.group, weights=ref.weight, minlength=len(GROUPS))

    n_regular = max(300, history_items // 50)
    n_sellers = max(200, history_items // 200)
    n_imp = n_regular + n_sellers
    kind = np.where(np.arange(n_imp) < n_regular, REGULAR, SELLER)
    newcomer = rng.random(n_imp) < np.where(kind == SELLER, 0.4, 0.2)
    tier = np.where(
        newcomer,
        weighted_choice(rng, np.array([0.70, 0.20, 0.10]), n_imp),
        weighted_choice(rng, np.array([0.87, 0.11, 0.02]), n_imp),
    )
    active_from = np.where(
        newcomer, rng.integers(start_us, end_us, n_imp), start_us - 30 * US_PER_DAY
    ).astype(np.int64)
    # Honest newcomers too start trading soon after registering: youth alone proves nothing.
    days_before = np.where(
        newcomer, 3 + rng.exponential(150, n_imp), 200 + rng.exponential(6 * 365, n_imp)
    )
    registered_day = (active_from // US_PER_DAY - days_before).astype(np.int64)

    n_brk = 40 + history_items // 2500
    n_cns = max(300, history_items // 40)
    n_car = 50 + history_items // 1500
    # Enough trucks to rest days between visits and to fill today's queue once each.
    n_veh = max(300, int(2.5 * queue_trucks), history_trips * 12 // max(1, _days(start_us, end_us)))

    cns_weights = np.array([CONSIGNOR_COUNTRIES.get(c, 0.0) for c in COUNTRIES])
    cns_country = weighted_choice(rng, cns_weights, n_cns)
    # Every dispatch country needs a few sellers.
    cns_country[: len(COUNTRIES)] = np.arange(len(COUNTRIES))
    cns_nominee = (cns_country == COUNTRY_INDEX["KZ"]) & (rng.random(n_cns) < 0.12)

    veh_carrier = weighted_choice(rng, rng.lognormal(0, 1.0, n_car), n_veh)
    return Entities(
        imp_kind=kind,
        imp_tier=tier,
        imp_activity=rng.lognormal(0, 1.2, n_imp) * np.where(kind == SELLER, 0.3, 1.0),
        imp_group=weighted_choice(rng, group_weight, n_imp),
        imp_active_from_us=active_from,
        imp_registered_day=registered_day,
        imp_registration_known=rng.random(n_imp) > 0.05,
        brk_tier=(rng.random(n_brk) < 0.1).astype(np.int64),
        brk_activity=rng.lognormal(0, 1.0, n_brk),
        cns_country=cns_country,
        cns_activity=rng.lognormal(0, 1.0, n_cns),
        cns_nominee=cns_nominee,
        car_tier=(rng.random(n_car) < 0.08).astype(np.int64),
        car_activity=rng.lognormal(0, 0.8, n_car),
        veh_carrier=veh_carrier,
        veh_activity=rng.lognormal(0, 0.5, n_veh),
        veh_plate=_plates(rng, n_veh),
        veh_home=weighted_choice(rng, crossing_shares, n_veh),
        veh_last_visit_us=np.full(n_veh, np.iinfo(np.int64).min // 2, dtype=np.int64),
    )


def _days(start_us: int, end_us: int) -> int:
    return int((end_us - start_us) // US_PER_DAY)


def _plate_parts(numbers: np.ndarray, letters: np.ndarray) -> list[pl.Series]:
    """Three digits and three letters, a bijection of the vehicle number (plates are unique)."""
    base = len(letters)
    modulus = 999 * base**3
    scrambled = (numbers * 7919 + 104_729) % modulus
    digits = pl.Series(scrambled % 999 + 1).cast(pl.String).str.zfill(3)
    rest = scrambled // 999
    chars = [pl.Series(letters[(rest // base**k) % base]) for k in range(3)]
    return [digits, *chars]


def _plates(rng: np.random.Generator, n: int) -> pl.Series:
    """Kazakh plates ("123ABC02") for most trucks, Russian ones ("А123ВС174") for the rest."""
    numbers = np.arange(n, dtype=np.int64)
    d, l0, l1, l2 = _plate_parts(numbers, LATIN_PLATE_LETTERS)
    cd, c0, c1, c2 = _plate_parts(numbers, CYRILLIC_PLATE_LETTERS)
    frame = pl.DataFrame(
        {
            "d": d, "l0": l0, "l1": l1, "l2": l2, "cd": cd, "c0": c0, "c1": c1, "c2": c2,
            "kz": KZ_REGIONS[rng.integers(0, len(KZ_REGIONS), n)],
            "ru": RU_REGIONS[rng.integers(0, len(RU_REGIONS), n)],
            "russian": rng.random(n) < 0.35,
        }
    )  # fmt: skip
    plates = frame.select(
        pl.when(pl.col("russian"))
        .then(pl.concat_str("c0", "cd", "c1", "c2", "ru"))
        .otherwise(pl.concat_str("d", "l0", "l1", "l2", "kz"))
        .alias("plate")
    )
    return plates["plate"]
