"""URLs: the case workers' admin under /admin/, the partner API under /api/v1/, health checks under /health/."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from core import health

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The language switch in the admin's header posts here (Django's set_language, kept in a cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", include("tracker.api.urls")),
    # Answered by core.health.HealthCheckMiddleware before the host check; listed here with the rest.
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
]

# Under /api/ a path no view answers is a problem document too.
handler404 = "tracker.api.problem_pages.not_found"

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
