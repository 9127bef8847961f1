"""Optimization studies: the optimizer interface and its backends, the proposer that serves
points to every process, and the rebuilding of a study from the store."""
