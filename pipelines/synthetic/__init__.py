"""The parts of the synthetic traffic generator; the public entry is ``pipelines.generate``.

config (TrafficConfig) -> reference (HS codes, countries, currencies) -> entities (traders,
trucks) -> period + structure (honest trips, declarations, items) -> shipment_schemes + schemes
(grey-import schemes, duty evaded) -> selectivity (old-rule inspections) -> frames (canonical
Polars frames). Everything is vectorised numpy; one seed gives one result.
"""
