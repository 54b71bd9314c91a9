"""The bottom layer: what every stage shares, importing only ``models``, ``tasks`` and the standard library.

errors (SpecError and the one-line words of a message), spec (a run as data), widths (a parameter budget sized
into a width), identity (run ids, source fingerprints, staleness), check (the one validation pass), kinds (the
registry of run kinds), plugins (the plugin loader), quiet (framework noise to a log).
"""
