from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "AI Gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the app registry is ready (these modules use the models): the signals connect the
        # invalidation receivers; the judge guardrail is handed the pipeline's chat, the call it makes.
        from gateway import pipeline
        from gateway.config import signals  # noqa: F401
        from guardrails.kinds import judge

        judge.connect(pipeline.chat)
