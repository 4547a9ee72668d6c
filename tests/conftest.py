"""Shared fixtures. Each area's own fixtures live in its folder's conftest."""
