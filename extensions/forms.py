"""Forms of the directory pages. They parse input; the rules live in rules.py and services.py."""

from __future__ import annotations

import re

from django import forms

from .models import Extension, ImportMode
from .rules import NUMBER_HELP, ExtensionValues
from .services import PAGE_MAX_BYTES


class ExtensionForm(forms.Form):
    number = forms.CharField(label="Extension", max_length=64, help_text=f"Digits or {NUMBER_HELP}.")
    display_name = forms.CharField(label="Display name", max_length=200)
    owner = forms.CharField(label="Owner", max_length=200, required=False)
    department = forms.CharField(label="Department", max_length=200, required=False)
    aliases = forms.CharField(
        label="Aliases",
        required=False,
        max_length=2000,
        help_text="What callers may say instead, separated by commas or “|”: sarah, sales team",
    )

    # Service errors are keyed by CSV column; the form calls the extension "number".
    FIELD_OF_COLUMN = {"extension": "number"}

    @classmethod
    def for_extension(cls, extension: Extension, **kwargs) -> ExtensionForm:
        initial = {
            "number": extension.number,
            "display_name": extension.display_name,
            "owner": extension.owner,
            "department": extension.department,
            "aliases": ", ".join(extension.aliases),
        }
        return cls(initial=initial, **kwargs)

    def values(self) -> ExtensionValues:
        data = self.cleaned_data
        aliases = tuple(a for a in re.split(r"[|,]", data["aliases"]) if a.strip())
        return ExtensionValues(
            number=data["number"],
            display_name=data["display_name"],
            owner=data["owner"],
            department=data["department"],
            aliases=aliases,
        )

    def add_service_errors(self, fields: dict[str, list[str]], message: str) -> None:
        if not fields:
            self.add_error(None, message)
        for column, messages in fields.items():
            for text in messages:
                self.add_error(self.FIELD_OF_COLUMN.get(column, column), text)


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8, with the header extension,display_name,…")
    mode = forms.ChoiceField(
        choices=ImportMode.choices, initial=ImportMode.MERGE, widget=forms.RadioSelect, label="Mode"
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > PAGE_MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {PAGE_MAX_BYTES // (1024 * 1024)} MB.")
        return upload


class TryForm(forms.Form):
    phrase = forms.CharField(label="What a caller says", max_length=300, required=False)
