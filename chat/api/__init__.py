"""The integrators' REST API, versioned under ``/api/v1/`` (DRF)."""
