# Joins the catalog fields (management API) with the rate-limit and request-log branches.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('gateway', '0004_catalog_fields_usage_user'),
        ('gateway', '0004_merge_0003_rate_limits_0003_request_logs'),
    ]

    operations = [
    ]
