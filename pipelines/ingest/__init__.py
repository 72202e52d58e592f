"""Validated ingest: foreign files in, canonical frames and a quarantine out.

``load_profile`` reads a source profile (TOML data mapping a foreign format onto the
canonical frames); ``read_source`` parses and validates without writing; ``ingest`` also
writes ``declarations.parquet``, ``outcomes.parquet`` and ``quarantine.parquet`` atomically.
"""

from pipelines.ingest.currency import currency_rates
from pipelines.ingest.job import (
    DECLARATIONS_FILE,
    OUTCOMES_FILE,
    QUARANTINE_FILE,
    IngestResult,
    ingest,
    read_declarations,
    read_source,
)
from pipelines.ingest.profile import FieldSpec, SourceProfile, available_profiles, load_profile

__all__ = [
    "DECLARATIONS_FILE",
    "OUTCOMES_FILE",
    "QUARANTINE_FILE",
    "FieldSpec",
    "IngestResult",
    "SourceProfile",
    "available_profiles",
    "currency_rates",
    "ingest",
    "load_profile",
    "read_declarations",
    "read_source",
]
