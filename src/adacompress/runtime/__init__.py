"""The running system: inference, estimate, retrain over a stream of images.

``loop.Runtime`` is the loop; its parts are the estimation rate (``p_est``), the
scene ``drift`` package (statistics, the monitor, the scene memory), Wald's
sequential tests (``wald``: the drift test, and the ``downshift`` test's arithmetic),
the ``retrain`` progress and the crash-safe ``store``. ``run`` is ``adacompress run``.
"""
