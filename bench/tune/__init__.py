"""Fair hyperparameter tuning with keras-tuner: every model, the same trials, the same steps per trial.

A study is one (task, task parameters, model) trained one way (``study.Study``); its search space is the learning
rate (always, log-uniform) plus the ``space`` its registry entry declares. keras-tuner's oracle proposes the trials
(random, Bayesian or a grid); each trial is an ordinary training run whose record, in ``<results>/<sweep>/``,
carries a ``tune`` field naming its study and place; the objective is its final validation score (normalised: 0
memoryless, 1 perfect). The trials run as a sweep's runs do (``search``): through the sweep driver and its
executors, a fresh worker process each, with the same GPU pinning, stop on Ctrl-C or SIGTERM, exit with the
driver, lock and resume. The records are a search's only state (``trials``): the oracle is made afresh and the
stored records answer what it proposes, so a search resumes exactly where its records end. The best of a study
(``table.best``: ties broken by properties of the trials alone) goes to ``<results>/<sweep>/tuned/<study>.json``,
which a sweep that says ``hp: tuned`` takes (``stored``). ``distributed``: chief and workers, keras-tuner's way.

This package face imports nothing heavy: ``bench sweep`` reads ``stored`` (and the report ``table``) without
keras-tuner.
"""
