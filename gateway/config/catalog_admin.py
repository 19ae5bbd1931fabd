"""The admin's model-definition form with the model catalog: the model name field suggests the catalog's
models for the chosen provider, and choosing one fills the empty price fields (gateway/static/gateway/
catalog.js, served by this server). gateway/admin.py mixes this in."""
from __future__ import annotations


from django import forms
from django.db import models
from django.http import HttpRequest

from gateway.config.catalog import catalog_models
from gateway.models import Provider

PRICE_FIELDS = ("input_cost_per_million", "output_cost_per_million", "cached_input_cost_per_million",
                "audio_input_cost_per_million", "audio_output_cost_per_million")


class CatalogModelInput(forms.TextInput):
    """A text input tied to a datalist, with the catalog (by provider) as JSON for the script."""

    template_name = "admin/gateway/catalog_model_input.html"

    class Media:
        js = ("gateway/catalog.js",)

    def get_context(self, name: str, value, attrs) -> dict:
        context = super().get_context(name, value, {**(attrs or {}), "list": "catalog-models",
                                                    "autocomplete": "off"})
        by_provider: dict[str, list[dict]] = {}
        for provider in Provider.values:
            entries = catalog_models(provider)
            if entries:
                by_provider[provider] = [{key: entry[key] for key in ("model_name", *PRICE_FIELDS, "context_window",
                                                                      "max_output_tokens", "capabilities")}
                                         for entry in entries]
        context["catalog"] = by_provider
        return context


class CatalogSuggestionsAdmin:
    """For ModelDefinitionAdmin: catalog suggestions on the model name."""

    def formfield_for_dbfield(self, db_field: models.Field, request: HttpRequest, **kwargs):
        if db_field.name == "model_name":
            kwargs["widget"] = CatalogModelInput(attrs={"class": "vTextField"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)
