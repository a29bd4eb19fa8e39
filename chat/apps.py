from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat import consumers  # noqa: F401 - registers the join_chat and message handlers
        from chat.services import transaction_system_line_post
        from escrow.signals import transaction_system_line

        # Escrow's state changes write their system line in the thread, in the same transaction.
        transaction_system_line.connect(transaction_system_line_post,
                                        dispatch_uid="chat.transaction_system_line")
