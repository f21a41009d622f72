"""Harbor API v2.0: the client (:mod:`.client`) and one module per kind of resource.

Each resource module knows how to read its kind at a Harbor (and, as the migration grows, how to
normalise it, compare it with another Harbor's and apply it); :class:`~.client.HarborAPI` owns the
protocol: JSON requests, paging, Harbor's encodings and the credential check.
"""
