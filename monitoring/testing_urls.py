"""``chatsite.urls`` with the monitoring routes in front (see :mod:`monitoring.testing_settings`)."""

from django.urls import include, path

from chatsite.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("", include("monitoring.urls")), *site_urlpatterns]
