"""``chatsite.settings`` with the monitoring wiring the lead adds to it (for tests until then).

Integration tests start servers with ``DJANGO_SETTINGS_MODULE=monitoring.testing_settings``
only while ``chatsite/settings.py`` and ``chatsite/urls.py`` lack the two
monitoring lines (``tests/integration/test_monitoring_support.py`` decides); once
they have them, this module changes nothing (both steps are idempotent).
"""

from chatsite.settings import *  # noqa: F401,F403
from monitoring.instrumentation import instrument_settings

instrument_settings(globals())
ROOT_URLCONF = "monitoring.testing_urls"
