from django.apps import AppConfig


class InvitationsConfig(AppConfig):
    name = "invitations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import projections  # noqa: F401  registers the invitation and membership projections
