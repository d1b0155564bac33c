"""The running system: inference, estimate, retrain over a stream of images.

``loop.Runtime`` is the loop; its parts are the estimation rate (``p_est``), the
``drift_monitor`` (scene statistics in ``drift``, the sequential ``drift_test`` and
the ``scene_memory``), the ``retrain`` progress and the crash-safe ``store``.
``run`` is ``adacompress run``.
"""
