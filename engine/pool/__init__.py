"""Distributed pooling of batch calls across processes, on Redis."""
