"""Analysis: recordings and frames in, steps and run statistics out.

``analyzer`` (the validating driver around the numba ``kernels``), ``step`` (one measured step),
``aggregator`` (window and run statistics), ``report`` (``footfall-agent analyze``) and ``validate``
(``footfall-agent validate``: agreement with real recordings).
"""
