"""Where the device and the cloud meet to learn: the training ``environment`` and
its answer ``cache``, the ``metrics``, the training loop (``fit``, ``train``),
calibration for an accuracy target, ``evaluate`` against every fixed setting, and
the recipe of the shipped agents (``presets``, ``ship``)."""
