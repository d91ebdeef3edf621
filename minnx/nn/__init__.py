"""minnx.nn: the layers, each file one family (linear, stochastic, normalization, ...)."""
