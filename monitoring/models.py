"""No tables: one unmanaged model so the dashboard has an entry in the admin index."""

from __future__ import annotations

from django.db import models


class Dashboard(models.Model):
    """Stands for the monitoring dashboard in the admin; never queried, no table."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
