"""The running system: inference, estimate, retrain over a stream of images.

``loop.Runtime`` handles each image; ``run_state.RunState`` is what it keeps
between them: the estimation rate (``p_est``), the scene ``drift`` package
(statistics, the monitor, the scene memory), the ``retrain`` progress, the
``downshift`` and the learner. Wald's sequential tests are in ``wald``; everything is
committed per image by the crash-safe ``store``. ``run`` is ``adacompress run``.
"""
