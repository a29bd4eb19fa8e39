from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The top layer: what reads or writes every app at once, so no domain app has to.

    The staff console's dashboard counts (`{% staff_queues %}`, templatetags/staff_console.py)
    and the demo data (`manage.py seed_demo`). No models; nothing imports this package.
    """

    name = "project"
    label = "project"
