"""The batch door, `heeldrop score`: a file of requests read in pieces, scored through the core
on threads or a Dask cluster, and written with one output row per record."""
