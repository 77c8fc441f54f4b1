from django.urls import path

from . import views

app_name = "calls"
urlpatterns = [
    path("calls/", views.call_list_view, name="list"),
    path("calls/<int:call_id>/", views.call_detail, name="detail"),
]
