"""Experiments on the running system: the scenery change of the paper's Fig. 4
(day -> night -> day) and the low-light simulation behind it."""
