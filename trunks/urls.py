from django.urls import path

from . import views, wizard_views

app_name = "trunks"
urlpatterns = [
    path("phone-numbers/", views.phone_numbers, name="phone-numbers"),
    path("phone-numbers/connect/", wizard_views.connect, name="wizard"),
    path("phone-numbers/connect/sip-trunk/", wizard_views.wizard, name="wizard-sip"),
    path("phone-numbers/connect/sip-trunk/check/", wizard_views.wizard_check, name="wizard-check"),
    path("trunks/", views.trunk_list_view, name="list"),
    path("trunks/<int:trunk_id>/", views.trunk_detail, name="detail"),
    path("trunks/<int:trunk_id>/connection/", wizard_views.connection, name="connection"),
    path("trunks/<int:trunk_id>/registration/", wizard_views.registration, name="registration"),
    path("trunks/<int:trunk_id>/status/", views.trunk_status_partial, name="status"),
    path("trunks/<int:trunk_id>/history/", views.trunk_history_partial, name="history"),
    path("trunks/<int:trunk_id>/settings/", views.trunk_settings, name="settings"),
    path("trunks/<int:trunk_id>/suspend/", views.trunk_suspend_view, name="suspend"),
    path("trunks/<int:trunk_id>/reactivate/", views.trunk_reactivate_view, name="reactivate"),
    path(
        "trunks/<int:trunk_id>/regenerate-password/", views.trunk_regenerate_view, name="regenerate-password"
    ),
    path("trunks/<int:trunk_id>/delete/", views.trunk_delete_view, name="delete"),
    path("trunks/<int:trunk_id>/dids/", views.trunk_did_add, name="did-add"),
    path("trunks/<int:trunk_id>/dids/<int:did_id>/remove/", views.trunk_did_remove, name="did-remove"),
]
