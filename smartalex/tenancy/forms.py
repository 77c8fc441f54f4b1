from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm


class SignupForm(forms.Form):
    workspace_name = forms.CharField(max_length=100, label="Workspace name")
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=8, help_text="At least 8 characters.")


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, label="Key name")
