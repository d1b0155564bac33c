"""PIRL: pretext-invariant representation learning (Misra & van der Maaten, CVPR 2020).

Not implemented yet; see the project's issues."""
