"""Training agents: the training loop (``fit``, ``train``), calibration for an
accuracy target, surveys of few answers per image, ``evaluate`` against every fixed
setting, and the recipe of the shipped agents (``presets``, ``ship``). Built on the
``exchange`` floor, where the device meets the cloud."""
