"""Experiments on the running system: the scenery change of the paper's Fig. 4
(day -> night -> day), the low-light simulation behind it, and the figures."""
