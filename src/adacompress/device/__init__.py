"""The device side: everything that happens before an upload, without the cloud.

``actions`` (what an upload can be), ``codec`` (encoding), ``features`` (the state
``E(x)``), ``policies`` (which action for which image), ``shipped`` (the agents in
the package) and ``compressor`` (all of it as one object: image in, upload out).
"""
