"""Client-facing routes under /gateway/, plus /health."""
from django.urls import path

urlpatterns: list = []
