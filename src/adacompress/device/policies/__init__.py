"""Learned policies: which action to send for an image, from its features.

``q`` is the paper's deep Q-network; ``survival`` predicts whether each action keeps
the answer and sends the cheapest trusted one. Both share ``base.LearnedPolicy``
(replay memory, exploration, learning); ``files`` saves and loads them.
"""
