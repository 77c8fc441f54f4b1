from django.urls import path

from . import views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list_view, name="list"),
    path("new/", views.agent_create_view, name="create"),
    path("<int:agent_id>/", views.agent_settings_view, name="settings"),
    path("<int:agent_id>/telephony/", views.agent_telephony_view, name="telephony"),
    path("<int:agent_id>/delete/", views.agent_delete_view, name="delete"),
]
