from django.urls import path

from . import views

app_name = "extensions"

_TRUNK = "settings/pbx/trunks/<int:trunk_id>/"

urlpatterns = [
    path("settings/pbx/", views.pbx, name="pbx"),
    path(_TRUNK, views.directory, name="directory"),
    path(_TRUNK + "extensions/add/", views.extension_add, name="add"),
    path(_TRUNK + "extensions/<int:extension_id>/edit/", views.extension_edit, name="edit"),
    path(_TRUNK + "extensions/<int:extension_id>/delete/", views.extension_remove, name="delete"),
    path(_TRUNK + "try/", views.try_it, name="try"),
    path(_TRUNK + "export.csv", views.export, name="export"),
    path(_TRUNK + "import/", views.import_upload, name="import"),
    path(_TRUNK + "imports/<uuid:token>/", views.import_job, name="import-job"),
    path(_TRUNK + "imports/<uuid:token>/commit/", views.import_commit, name="import-commit"),
]
