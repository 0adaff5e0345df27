from django.apps import AppConfig
from django.db.backends.signals import connection_created


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messaging import receivers
        from messaging.sql.sqlite import use_sqlite_variable_limit

        receivers.connect()
        connection_created.connect(use_sqlite_variable_limit, dispatch_uid="ims-sqlite-variable-limit")
