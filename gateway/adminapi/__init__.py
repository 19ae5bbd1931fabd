"""The management API under /gateway/admin/v1/: configuration objects by name, the provider list and the model
catalog, for automation (CI pipelines, Terraform, portals). Writes go through the same validation and
services as `gateway_apply`, so the API, the YAML file and the admin agree on every rule and message."""
