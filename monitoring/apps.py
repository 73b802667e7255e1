from __future__ import annotations

import atexit
import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class MonitoringAppConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from prometheus_client import values

        from monitoring import exposition, metrics  # noqa: F401 - registers the metrics

        if exposition.multiprocess_mode():
            if values.ValueClass.__name__ != "MmapedValue":
                logger.error(
                    "PROMETHEUS_MULTIPROC_DIR is set but prometheus_client was imported before it was:"
                    " this worker's metrics are not shared.  Set it in the process environment."
                )
            # Live gauges (connections, sessions...) of an exited worker stop counting.
            atexit.register(exposition.mark_process_dead)
