"""Where the device meets the cloud: the ``environment`` (a session of photos, a
cloud and its answers: decode once, encode, ask, score), the answer ``cache``,
``monotone`` implications between actions' answers, call plans (``calls``) and the
cloud's ``settings``. Both the training floor (``learning``) and the running system
(``runtime``) stand on it; neither imports the other."""
