import pytest
from django.urls import reverse

from conftest import PASSWORD, make_member
from smartalex.tenancy.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db


def test_signup_creates_workspace_owner_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "workspace_name": "Bright Smiles",
            "email": "Ann@Bright.test",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    user = User.objects.get(email="ann@bright.test")
    membership = Membership.objects.get(user=user)
    assert membership.tenant.name == "Bright Smiles" and membership.role == Role.OWNER
    home = client.get(reverse("home"))
    assert "Connect your phone system" in home.content.decode()


def test_signup_rejects_taken_workspace_name_and_short_password(client, tenant):
    response = client.post(
        reverse("signup"),
        {
            "workspace_name": "acme dental",
            "email": "x@y.test",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    response = client.post(
        reverse("signup"), {"workspace_name": "New", "email": "x@y.test", "password": "short"}
    )
    assert response.status_code == 200 and not Tenant.objects.filter(name="New").exists()


def test_login_and_logout(client, owner):
    response = client.post(reverse("login"), {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_login_is_throttled_with_an_honest_429(client, owner):
    codes = [
        client.post(reverse("login"), {"username": "owner@acme.test", "password": "wrong"}).status_code
        for _ in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]
    # Locked out even with the right password, until the cool-off ends.
    response = client.post(reverse("login"), {"username": "owner@acme.test", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.content.decode()


def test_switching_workspace_shows_the_other_one(client, tenant, other_tenant):
    user = make_member(tenant, Role.ADMIN, "both@multi.test")
    Membership.objects.create(user=user, tenant=other_tenant, role=Role.VIEWER)
    client.force_login(user)
    assert "Acme Dental" in client.get(reverse("home")).content.decode()
    client.post(reverse("switch-workspace"), {"tenant_id": other_tenant.pk})
    page = client.get(reverse("home")).content.decode()
    assert "<h1>Globex Clinic</h1>" in page


def test_switching_to_a_workspace_you_are_not_in_is_404(owner_client, other_tenant):
    response = owner_client.post(reverse("switch-workspace"), {"tenant_id": other_tenant.pk})
    assert response.status_code == 404
    assert "<h1>Acme Dental</h1>" in owner_client.get(reverse("home")).content.decode()


def test_viewer_is_told_to_ask_an_admin(client, member_factory):
    client.force_login(member_factory(Role.VIEWER))
    page = client.get(reverse("home")).content.decode()
    assert "Ask an Owner or Admin" in page
