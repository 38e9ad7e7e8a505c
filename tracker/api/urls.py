"""/api/v1/: the partner API, its OpenAPI schema and its documentation pages."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from tracker.api import views

router = DefaultRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("cases", views.CaseViewSet, basename="case")
router.register("lists", views.HandoverListViewSet, basename="list")
router.register("replies", views.ReplyViewSet, basename="reply")
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")

app_name = "api-v1"
urlpatterns = [
    path("lists/<int:list_pk>/entries/", views.ListEntryViewSet.as_view({"get": "list"}), name="list-entries"),
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("schema/swagger/", SpectacularSwaggerView.as_view(url_name="api-v1:schema"), name="swagger"),
    path("schema/redoc/", SpectacularRedocView.as_view(url_name="api-v1:schema"), name="redoc"),
]
