"""Dagster assets and asset checks of the evalplatform code location: thin wrappers over `evalplatform`."""
