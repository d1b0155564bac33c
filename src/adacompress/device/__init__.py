"""The device side: everything that happens before an upload, without the cloud.

``actions`` (what an upload can be), ``codec`` (encoding), ``features`` (the state
``E(x)``), ``policies`` (which action for which image), ``card`` (an agent's typed
description), ``zoo`` (the agents in the package: names, files, recipes),
``compressor`` (all of it as one object: image in, upload out), ``export`` and
``exported`` (the agent as ONNX graphs and a card, for a device without torch),
``explain`` (what a choice rests on).
"""
