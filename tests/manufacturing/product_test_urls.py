"""The project's URLs plus the product pages, until lims/urls.py includes them itself."""

from django.urls import include, path

from lims.urls import urlpatterns as base

_included = any(getattr(p, "urlconf_name", None) and "product_urls" in str(p.urlconf_name) for p in base)
urlpatterns = list(base) if _included else [*base, path("product/", include("manufacturing.product_urls"))]
