"""One spec → one record: the spec (a run as data), training within a budget, what every run measures, the record."""
