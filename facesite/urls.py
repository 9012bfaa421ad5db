from django.contrib import admin
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from detection import views
from videos import views as video_views

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("image", views.DetectionListCreateView.as_view(), name="detection-list"),
    path("image/<uuid:detection_id>", views.DetectionDetailView.as_view(), name="detection-detail"),
    path("video", video_views.VideoListCreateView.as_view(), name="video-list"),
    path("video/<uuid:video_id>", video_views.VideoDetailView.as_view(), name="video-detail"),
    path("media/<path:path>", views.MediaFileView.as_view(), name="media"),
    path("healthz", views.HealthzView.as_view(), name="healthz"),
    path("readyz", views.ReadyzView.as_view(), name="readyz"),
    # GET and HEAD only: DRF's OPTIONS answer would go through the page's HTML renderer (a 500).
    path("api/schema/", SpectacularAPIView.as_view(http_method_names=["get", "head"]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="swagger-ui",
    ),
    path("admin/", admin.site.urls),
    # Browsers ask for /favicon.ico on every page, the admin's included.
    path("favicon.ico", RedirectView.as_view(url=static("detection/favicon.svg"), permanent=True)),
]

handler400 = "detection.errors_http.bad_request"
handler403 = "detection.errors_http.permission_denied"
handler404 = "detection.errors_http.page_not_found"
handler500 = "detection.errors_http.server_error"
