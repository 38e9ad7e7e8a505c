"""/api/v1/: the partner API, its OpenAPI schema and its documentation pages."""

from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from tracker.api import problem_pages, views


class ApiRouter(DefaultRouter):
    # No `.json` suffixes: each record has one URL, as the schema lists it.
    include_format_suffixes = False


router = ApiRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("cases", views.CaseViewSet, basename="case")
router.register("lists", views.HandoverListViewSet, basename="list")
router.register("replies", views.ReplyViewSet, basename="reply")
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")

# The documentation pages run Swagger UI and ReDoc from drf-spectacular-sidecar's static files.
# Their scripts stay under the site's policy (script-src 'self': the split Swagger view serves its
# start-up script as a file instead of inline); what they need beyond it is styles they write into
# the page (Swagger's <style> block, ReDoc's generated styles), data: images in their CSS, and the
# worker ReDoc starts from a blob: URL. Neither page shows a child's data.
DOCS_POLICY = {
    "style-src": ["'unsafe-inline'"],
    "img-src": ["data:"],
    "worker-src": ["'self'", "blob:"],
}

app_name = "api-v1"
urlpatterns = [
    path("lists/<int:list_pk>/entries/", views.ListEntryViewSet.as_view({"get": "list"}), name="list-entries"),
    path("", include(router.urls)),
    path("problems/", problem_pages.problem_index, name="problems"),
    path("problems/<slug:slug>/", problem_pages.problem_page, name="problem"),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("schema/swagger/", csp_update(DOCS_POLICY)(SpectacularSwaggerSplitView.as_view(url_name="api-v1:schema")),
         name="swagger"),
    # The page's template without the web fonts drf-spectacular fetches from a CDN.
    path("schema/redoc/", csp_update(DOCS_POLICY)(
        SpectacularRedocView.as_view(url_name="api-v1:schema", template_name="api/redoc.html")), name="redoc"),
]
