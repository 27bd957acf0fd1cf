"""PGR²M Studio core: motion representations, the model, training and evaluation.

Nothing in this package imports Qt, pyqtgraph or vispy, so it runs headless.
"""

__version__ = "0.1.0"
