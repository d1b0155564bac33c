"""Scene drift: the scene ``statistics`` of each photo and their drift score, the
``monitor`` that raises ``p_est`` on a drift and runs the drift test on the estimates
that follow, and the ``scene_memory`` that brings a scene's agent back."""
