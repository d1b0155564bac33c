"""The cloud side: what a vision service is (``service``), the services by name
(``backends``: emulated EfficientNet-Lite clouds, AWS Rekognition, Google
Vision-shaped REST), the REST and Rekognition ``clients``, and the emulator's HTTP
``server`` (its request bodies' ``admission`` and its ``connections``)."""
